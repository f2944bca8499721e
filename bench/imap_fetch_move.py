#!/usr/bin/env python3
"""The plain-Python peer of bench/imap.sh (stdlib imaplib only): fetch every
INBOX mail in batches of 100 with UID FETCH BODY.PEEK[], write each to a
file in OUTDIR (no fsync), then UID MOVE the batch to Exported. No parsing,
no ledger: the floor of what "fetch, store, move" costs over IMAP.

usage: imap_fetch_move.py HOST PORT tls|none OUTDIR
environment: BENCH_IMAP_USER, BENCH_IMAP_PASSWORD, BENCH_IMAP_CA (tls: the
CA that signed the server's certificate, checked like any other)
"""

import imaplib
import os
import re
import ssl
import sys

BATCH = 100
UID_RE = re.compile(rb"\bUID (\d+)")


def main() -> int:
    host, port, security, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    os.makedirs(outdir, exist_ok=True)
    if security == "tls":
        ctx = ssl.create_default_context(cafile=os.environ["BENCH_IMAP_CA"])
        imap = imaplib.IMAP4_SSL(host, port, ssl_context=ctx)
    elif security == "none":
        imap = imaplib.IMAP4(host, port)
    else:
        sys.exit(f"security must be tls or none, not {security}")
    imap.login(os.environ["BENCH_IMAP_USER"], os.environ["BENCH_IMAP_PASSWORD"])
    typ, data = imap.select("INBOX")
    assert typ == "OK", data
    typ, data = imap.uid("SEARCH", "ALL")
    assert typ == "OK", data
    uids = data[0].split()
    written = nbytes = 0
    for i in range(0, len(uids), BATCH):
        batch = b",".join(uids[i:i + BATCH]).decode()
        typ, data = imap.uid("FETCH", batch, "(BODY.PEEK[])")
        assert typ == "OK", data
        for item in data:
            if not isinstance(item, tuple):
                continue  # the closing ")" of each FETCH response
            uid = UID_RE.search(item[0]).group(1).decode()
            with open(os.path.join(outdir, f"{uid}.eml"), "wb") as f:
                f.write(item[1])
            written += 1
            nbytes += len(item[1])
        typ, data = imap.uid("MOVE", batch, "Exported")
        assert typ == "OK", data
    imap.logout()
    print(f"fetched, wrote and moved {written} of {len(uids)} mails, {nbytes} bytes")
    return 0 if written == len(uids) else 1


if __name__ == "__main__":
    sys.exit(main())
