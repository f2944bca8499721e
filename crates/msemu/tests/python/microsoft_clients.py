"""Drives the emulator with Microsoft's own client libraries, unmodified: msal for the
identity platform and msgraph-sdk for Graph mail. Run by the Rust test
`python_clients::msal_and_msgraph_sdk_work_against_the_emulator`, which starts the emulator
(https, demo seed, auto-consent) and passes its address in the environment.

Each step prints a line starting with "OK "; the Rust test checks for them. Any failure
raises, so the exit status is non-zero.
"""

import asyncio
import http.server
import json
import os
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, parse_qsl, urlparse

try:
    import msal
    import requests
    from kiota_abstractions.authentication import (
        AccessTokenProvider,
        AllowedHostsValidator,
        BaseBearerTokenAuthenticationProvider,
    )
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.models.file_attachment import FileAttachment
    from msgraph.generated.models.message import Message
    from msgraph.generated.models.subscription import Subscription
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.users.item.mail_folders.mail_folders_request_builder import (
        MailFoldersRequestBuilder,
    )
    from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
        MessagesRequestBuilder,
    )
    from msgraph.generated.users.item.messages.item.move.move_post_request_body import (
        MovePostRequestBody,
    )
except ImportError as e:  # the Rust test turns this into a clear failure
    print(f"MISSING PYTHON PACKAGE: {e}. Install with: pip install msal msgraph-sdk", file=sys.stderr)
    sys.exit(3)

BASE = os.environ["MSEMU_BASE"]  # https://127.0.0.1:PORT
TENANT = os.environ["MSEMU_TENANT"]
CLIENT_ID = os.environ["MSEMU_CLIENT_ID"]
CLIENT_SECRET = os.environ["MSEMU_CLIENT_SECRET"]
DAEMON_ID = os.environ["MSEMU_DAEMON_CLIENT_ID"]
DAEMON_SECRET = os.environ["MSEMU_DAEMON_CLIENT_SECRET"]
REDIRECT_URI = os.environ["MSEMU_REDIRECT_URI"]
USER = os.environ["MSEMU_USER"]
SHARED = os.environ["MSEMU_SHARED"]
AUTHORITY = f"{BASE}/{TENANT}"
GRAPH_SCOPES = [
    "https://graph.microsoft.com/Mail.ReadWrite",
    "https://graph.microsoft.com/Mail.ReadWrite.Shared",
    "https://graph.microsoft.com/User.Read",
]


def ok(msg):
    print(f"OK {msg}", flush=True)


def msal_app(client_id, secret, discovery=False):
    # msal validates hosts it does not know through instance discovery. The delegated app
    # points it at the emulator's own endpoint; the daemon apps turn it off, because msal's
    # cache lookup in acquire_token_for_client asks login.microsoftonline.com directly for
    # authority aliases unless instance discovery is off.
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=secret,
        authority=AUTHORITY,
        instance_discovery=f"{BASE}/common/discovery/instance" if discovery else False,
    )


def identity():
    app = msal_app(CLIENT_ID, CLIENT_SECRET, discovery=True)
    flow = app.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI, login_hint=USER)
    assert flow["code_verifier"], flow
    resp = requests.get(flow["auth_uri"], allow_redirects=False)
    assert resp.status_code == 302, (resp.status_code, resp.text[:300])
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT_URI), location
    auth_response = dict(parse_qsl(urlparse(location).query))
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert "access_token" in result, result
    assert "refresh_token" in result, result
    assert isinstance(result["expires_in"], int), result
    assert result["id_token_claims"]["preferred_username"] == USER, result["id_token_claims"]
    ok(f"auth code exchange scope={result['scope']}")

    # A second redemption of the same code is refused (AADSTS54005).
    again = app.acquire_token_by_authorization_code(
        auth_response["code"], GRAPH_SCOPES, redirect_uri=REDIRECT_URI
    )
    assert again.get("error") == "invalid_grant" and 54005 in again.get("error_codes", []), again
    ok("code reuse rejected 54005")

    refreshed = app.acquire_token_by_refresh_token(result["refresh_token"], GRAPH_SCOPES)
    assert "access_token" in refreshed, refreshed
    assert refreshed["refresh_token"] != result["refresh_token"], "refresh token not rotated"
    ok("refresh rotated")

    stale = app.acquire_token_by_refresh_token(result["refresh_token"], GRAPH_SCOPES)
    assert stale.get("error") == "invalid_grant" and 70008 in stale.get("error_codes", []), stale
    ok("old refresh token rejected 70008")

    daemon = msal_app(DAEMON_ID, DAEMON_SECRET)
    app_token = daemon.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in app_token and "refresh_token" not in app_token, app_token
    ok("client credentials")

    bad = msal_app(DAEMON_ID, "wrong-secret").acquire_token_for_client(
        ["https://graph.microsoft.com/.default"]
    )
    assert bad.get("error") == "invalid_client" and 7000215 in bad.get("error_codes", []), bad
    ok("bad secret rejected 7000215")
    return refreshed["access_token"], app_token["access_token"]


def self_signed(days):
    """An RSA key and a self-signed certificate, as `cryptography` (msal's own
    dependency) makes them."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "msal certificate test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode(), cert


def certificate_credentials():
    """msal's two assertion forms: RS256 with the SHA-1 `x5t` (a thumbprint
    given), PS256 with `x5t#S256` (the certificate given)."""
    from cryptography.hazmat.primitives import hashes

    key_pem, cert_pem, cert = self_signed(30)
    r = requests.post(f"{BASE}/_emulator/apps/{DAEMON_ID}/certificates", json={"pem": cert_pem})
    assert r.status_code == 201, (r.status_code, r.text)
    scope = ["https://graph.microsoft.com/.default"]
    for label, credential in [
        ("RS256 x5t", {"private_key": key_pem, "thumbprint": cert.fingerprint(hashes.SHA1()).hex()}),
        ("PS256 x5t#S256", {"private_key": key_pem, "public_certificate": cert_pem}),
    ]:
        token = msal_app(DAEMON_ID, credential).acquire_token_for_client(scope)
        assert "access_token" in token, (label, token)
        ok(f"certificate credential {label}")

    other_key, other_cert_pem, _ = self_signed(30)
    refused = msal_app(
        DAEMON_ID, {"private_key": other_key, "public_certificate": other_cert_pem}
    ).acquire_token_for_client(scope)
    assert refused.get("error") == "invalid_client" and 700027 in refused.get("error_codes", []), refused
    ok("unknown certificate rejected 700027")


class StaticToken(AccessTokenProvider):
    def __init__(self, token):
        self.token = token

    async def get_authorization_token(self, uri, additional_authentication_context=None):
        return self.token

    def get_allowed_hosts_validator(self):
        return AllowedHostsValidator([urlparse(BASE).netloc])


def graph_client(token):
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(token)))
    adapter.base_url = f"{BASE}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


async def all_pages(builder, first):
    items = list(first.value or [])
    link = first.odata_next_link
    pages = 1
    while link:
        page = await builder.with_url(link).get()
        items.extend(page.value or [])
        link = page.odata_next_link
        pages += 1
    return items, pages


async def graph(user_token, app_token):
    client = graph_client(user_token)
    me = await client.me.get()
    assert me.user_principal_name == USER, me
    ok(f"me {me.user_principal_name}")

    folders_cfg = RequestConfiguration(
        query_parameters=MailFoldersRequestBuilder.MailFoldersRequestBuilderGetQueryParameters(top=3)
    )
    first = await client.me.mail_folders.get(request_configuration=folders_cfg)
    folders, pages = await all_pages(client.me.mail_folders, first)
    names = {f.display_name: f for f in folders}
    assert {"Inbox", "Exported", "Error"} <= set(names), sorted(names)
    assert "Sync Issues" not in names, "hidden folder listed without includeHiddenFolders"
    assert pages > 1, pages
    ok(f"mail folders {len(folders)} in {pages} pages")

    inbox = names["Inbox"]
    msgs_cfg = RequestConfiguration(
        query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            top=2,
            select=["id", "subject", "receivedDateTime", "hasAttachments", "internetMessageId"],
            orderby=["receivedDateTime desc"],
        )
    )
    builder = client.me.mail_folders.by_mail_folder_id(inbox.id).messages
    first = await builder.get(request_configuration=msgs_cfg)
    messages, pages = await all_pages(builder, first)
    assert len(messages) == 3 and pages == 2, (len(messages), pages)
    assert all(m.has_attachments for m in messages)
    assert any(c in messages[0].id for c in "/+="), messages[0].id
    ok(f"messages {len(messages)} in {pages} pages")

    msg = messages[0]
    mime = await client.me.messages.by_message_id(msg.id).content.get()
    assert b"Subject: " + msg.subject.encode() in mime, mime[:200]
    ok(f"mime {len(mime)} bytes")

    atts = await client.me.messages.by_message_id(msg.id).attachments.get()
    pdf = atts.value[0]
    assert isinstance(pdf, FileAttachment) and pdf.name.endswith(".pdf"), pdf
    assert pdf.content_bytes.startswith(b"%PDF"), pdf.content_bytes[:10]
    ok(f"attachment {pdf.name}")

    moved = await client.me.messages.by_message_id(msg.id).move.post(
        MovePostRequestBody(destination_id=names["Exported"].id)
    )
    assert isinstance(moved, Message) and moved.id != msg.id, moved
    assert moved.parent_folder_id == names["Exported"].id
    try:
        await client.me.messages.by_message_id(msg.id).get()
        raise AssertionError("old id still resolves after move")
    except ODataError as e:
        assert e.response_status_code == 404 and e.error.code == "ErrorItemNotFound", e
    ok("move gave a new id; old id is 404")

    patched = await client.me.messages.by_message_id(moved.id).patch(Message(is_read=True))
    assert patched.is_read is True
    ok("patch isRead")

    shared = await client.users.by_user_id(SHARED).mail_folders.by_mail_folder_id("inbox").messages.get()
    assert len(shared.value) == 2, len(shared.value)
    ok("shared mailbox via Mail.ReadWrite.Shared")

    daemon = graph_client(app_token)
    folders = await daemon.users.by_user_id(USER).mail_folders.get()
    assert folders.value, folders
    try:
        await daemon.me.get()
        raise AssertionError("/me worked with an app token")
    except ODataError as e:
        assert e.response_status_code == 400, e
    ok("app token reads mailbox, /me refused")


class Hook(http.server.BaseHTTPRequestHandler):
    """A subscriber: echoes Graph's validation token on /hook (a wrong
    answer on /wrong) and records the notifications it is sent."""

    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        query = parse_qs(urlparse(self.path).query)
        if "validationToken" in query:
            token = query["validationToken"][0]
            answer = token if self.path.startswith("/hook") else "not the token"
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(answer.encode())
            return
        Hook.received.append(json.loads(body))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


async def subscriptions(app_token):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
    daemon = graph_client(app_token)
    resource = f"/users/{USER}/mailFolders('inbox')/messages"
    expires = datetime.now(timezone.utc) + timedelta(hours=2)
    sub = await daemon.subscriptions.post(Subscription(
        change_type="created", notification_url=hook, lifecycle_notification_url=hook,
        resource=resource, expiration_date_time=expires, client_state="py-secret"))
    assert sub.id and sub.client_state == "py-secret" and sub.resource == resource, sub
    ok(f"subscription {sub.id} created after the validation handshake")

    for wrong, why in [
        (dict(notification_url=hook.replace("/hook", "/wrong")), "ValidationError"),
        (dict(notification_url=hook, expiration_date_time=datetime.now(timezone.utc) + timedelta(days=8)), "InvalidRequest"),
    ]:
        fields = dict(change_type="created", notification_url=hook, resource=resource,
                      expiration_date_time=expires, client_state="x")
        fields.update(wrong)
        try:
            await daemon.subscriptions.post(Subscription(**fields))
            raise AssertionError(f"subscription accepted: {wrong}")
        except ODataError as e:
            assert e.response_status_code == 400 and e.error.code == why, (e.response_status_code, e.error.code)
    ok("a wrong validation echo and an 8-day expiry are refused")

    renewed = await daemon.subscriptions.by_subscription_id(sub.id).patch(
        Subscription(expiration_date_time=expires + timedelta(hours=1)))
    assert renewed.expiration_date_time > sub.expiration_date_time, renewed
    ok("subscription renewed")

    mime = f"From: a@fabrikam.example\r\nTo: {USER}\r\nSubject: pushed\r\nMessage-ID: <push@fabrikam.example>\r\n\r\nhello\r\n"
    requests.post(f"{BASE}/_emulator/mailboxes/{USER}/messages",
                  json={"folder": "Inbox", "mime": mime}).raise_for_status()
    deadline = time.time() + 10
    while not Hook.received and time.time() < deadline:
        time.sleep(0.05)
    assert Hook.received, "no notification arrived"
    note = Hook.received[0]["value"][0]
    assert note["subscriptionId"] == sub.id and note["clientState"] == "py-secret", note
    assert note["changeType"] == "created" and note["resourceData"]["id"], note
    pushed = await daemon.users.by_user_id(USER).messages.by_message_id(note["resourceData"]["id"]).get()
    assert pushed.subject == "pushed", pushed.subject
    ok("a new mail in the Inbox was notified with the clientState; its id reads the message")

    await daemon.subscriptions.by_subscription_id(sub.id).delete()
    try:
        await daemon.subscriptions.by_subscription_id(sub.id).get()
        raise AssertionError("deleted subscription still there")
    except ODataError as e:
        assert e.response_status_code == 404, e
    ok("subscription deleted")
    server.shutdown()


def main():
    user_token, app_token = identity()
    certificate_credentials()
    asyncio.run(graph(user_token, app_token))
    asyncio.run(subscriptions(app_token))
    ok("all")


if __name__ == "__main__":
    main()
