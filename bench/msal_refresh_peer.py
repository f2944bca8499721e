"""The peer of `refresh-tokens` in bench/scale.sh: Microsoft's msal
(ConfidentialClientApplication.acquire_token_by_refresh_token) redeeming
every refresh token of a file (one a line) at the emulator, PEER_THREADS
(default 32) at a time on one app and one requests session whose pool holds
that many connections. Prints one JSON line: seconds, refreshed, failed,
cpu_seconds, peak_rss_mb.

    PEER_BASE=https://127.0.0.1:PORT PEER_TENANT=… PEER_CLIENT_ID=… \
    PEER_CLIENT_SECRET=… python bench/msal_refresh_peer.py TOKENS_FILE

msal takes only an https authority: REQUESTS_CA_BUNDLE names the emulator's CA.
"""

import json
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import msal
import requests
from requests.adapters import HTTPAdapter

BASE = os.environ["PEER_BASE"]
TENANT = os.environ["PEER_TENANT"]
CLIENT_ID = os.environ["PEER_CLIENT_ID"]
CLIENT_SECRET = os.environ["PEER_CLIENT_SECRET"]
THREADS = int(os.environ.get("PEER_THREADS", "32"))
# What mailferry asks for on refresh (msal adds openid, profile and offline_access).
SCOPES = [
    "https://graph.microsoft.com/User.Read",
    "https://graph.microsoft.com/Mail.ReadWrite",
]


def main():
    with open(sys.argv[1], encoding="ascii") as f:
        tokens = [line.strip() for line in f if line.strip()]
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=THREADS)
    session.mount("https://", adapter)
    app = msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=CLIENT_SECRET,
        authority=f"{BASE}/{TENANT}",
        instance_discovery=f"{BASE}/common/discovery/instance",
        http_client=session,
    )

    def redeem(token):
        result = app.acquire_token_by_refresh_token(token, SCOPES)
        return "access_token" in result and "refresh_token" in result

    cpu = time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        outcomes = list(pool.map(redeem, tokens))
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    refreshed = sum(outcomes)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "refreshed": refreshed,
                "failed": len(tokens) - refreshed,
                "cpu_seconds": cpu,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
