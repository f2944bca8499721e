"""The peer of bench/graph.sh: what a small script on Microsoft's own Graph
SDK for Python (msgraph-sdk, from PyPI) does for the same job — list the
Inbox's ids, then for each mail GET its MIME (`$value`), write it to a file
and move the mail to Exported, with at most 4 requests in flight (Graph's
limit per mailbox). No parsing, no fsync, no ledger: a lower bound on the
work mailferry does.

  python graph_sdk_peer.py BASE_URL MAILBOX INBOX_ID EXPORTED_ID OUT_DIR
The app-only access token comes in the environment (PEER_TOKEN). Prints one
line of JSON: mails, seconds, cpu_seconds, peak_rss_mb.
"""

import asyncio
import json
import os
import sys
import time
from urllib.parse import urlparse

from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.generated.users.item.messages.item.move.move_post_request_body import (
    MovePostRequestBody,
)

IN_FLIGHT = 4


class StaticToken(AccessTokenProvider):
    def __init__(self, token, base):
        self.token = token
        self.base = base

    async def get_authorization_token(self, uri, additional_authentication_context=None):
        return self.token

    def get_allowed_hosts_validator(self):
        return AllowedHostsValidator([urlparse(self.base).netloc])


async def main(base, mailbox, inbox_id, exported_id, out_dir):
    adapter = GraphRequestAdapter(
        BaseBearerTokenAuthenticationProvider(StaticToken(os.environ["PEER_TOKEN"], base))
    )
    adapter.base_url = f"{base}/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    user = client.users.by_user_id(mailbox)
    started = time.monotonic()
    cpu_started = time.process_time()

    config = RequestConfiguration(
        query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            top=100, select=["id"], orderby=["receivedDateTime asc"]
        )
    )
    builder = user.mail_folders.by_mail_folder_id(inbox_id).messages
    page = await builder.get(request_configuration=config)
    ids = [m.id for m in page.value or []]
    while page.odata_next_link:
        page = await builder.with_url(page.odata_next_link).get()
        ids.extend(m.id for m in page.value or [])

    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(n, message_id):
        async with gate:
            mime = await user.messages.by_message_id(message_id).content.get()
        with open(os.path.join(out_dir, f"{n:06}.eml"), "wb") as f:
            f.write(mime)
        async with gate:
            await user.messages.by_message_id(message_id).move.post(
                MovePostRequestBody(destination_id=exported_id)
            )

    await asyncio.gather(*(one(n, i) for n, i in enumerate(ids)))
    took = time.monotonic() - started
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent
    # across exec, so it would report the benchmark's own size.
    with open("/proc/self/status") as status:
        hwm_kb = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    print(
        json.dumps(
            {
                "mails": len(ids),
                "seconds": took,
                "cpu_seconds": time.process_time() - cpu_started,
                "peak_rss_mb": hwm_kb / 1024,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
