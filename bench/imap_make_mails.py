#!/usr/bin/env python3
"""Writes COUNT distinct mails of about 120 KB into DIR as Maildir files
(for bench/imap.sh, which hard-links them into Dovecot users' INBOX/cur).

Each mail: from billing@fabrikam.example (the importer's allowed sender), a
one-line text body and an ~88 KB PDF attachment of its own bytes (base64:
~120 KB in all, like bench/import.sh's mails), a distinct Message-ID, CRLF
line ends (what an IMAP server stores and serves). The file names carry
S= and W= (file size = size on the wire), so Dovecot never reads a file to
learn its size.

PDF_BYTES (default 88000) sets the attachment's size instead: `bench/imap.sh
large` makes one mail with a 100,000,000-byte one (base64: ~137 MB of MIME;
making it takes a few seconds and about 6.5× the attachment in memory).

usage: imap_make_mails.py DIR COUNT [PDF_BYTES]
"""

import os
import random
import sys
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

PDF_BYTES = 88_000


def mail(n: int, pdf_bytes: int = PDF_BYTES) -> bytes:
    msg = EmailMessage()
    msg["From"] = "billing@fabrikam.example"
    msg["To"] = "Invoices <invoices@contoso.com>"
    msg["Subject"] = f"Invoice {n}"
    msg["Message-ID"] = f"<bench-{n:06d}@fabrikam.example>"
    when = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=n)
    msg["Date"] = format_datetime(when)
    msg.set_content(f"Invoice {n}, see the attached PDF.\n")
    pdf = b"%PDF-1.7\n" + random.Random(n).randbytes(pdf_bytes - 9)
    msg.add_attachment(pdf, maintype="application", subtype="pdf",
                       filename=f"invoice-{n:06d}.pdf")
    return msg.as_bytes(policy=SMTP)


def main() -> None:
    out, count = sys.argv[1], int(sys.argv[2])
    pdf_bytes = int(sys.argv[3]) if len(sys.argv) > 3 else PDF_BYTES
    if pdf_bytes < 9:
        sys.exit("PDF_BYTES must be at least 9 (the %PDF-1.7 line)")
    os.makedirs(out, exist_ok=True)
    total = 0
    for n in range(1, count + 1):
        raw = mail(n, pdf_bytes)
        total += len(raw)
        # Maildir: <time>.<unique>.<host>,S=<size>,W=<virtual size>:2,<flags>
        name = f"{1767225600 + n}.M{n}P0.bench,S={len(raw)},W={len(raw)}:2,"
        with open(os.path.join(out, name), "wb") as f:
            f.write(raw)
    print(f"{count} mails, {total} bytes ({total / count / 1000:.1f} KB each)")


if __name__ == "__main__":
    main()
