#!/usr/bin/env bash
# Installs what mailferry's tests need on a Debian machine: PostgreSQL, Dovecot
# (IMAP server), Chromium and isync (mbsync, the IMAP benchmark's speed peer) as
# Debian packages; in a virtualenv inside the repository,
# Microsoft's own Python client libraries (msal, msgraph-sdk) and croniter,
# which the tests use as independent checks, moto (an S3 server) and aiosmtpd (an SMTP server); and playwright-core (npm, no
# browser download) to drive Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(postgresql dovecot-imapd isync python3-venv chromium zip p7zip-full openssl)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Node may come from elsewhere than Debian (this machine kind ships npm 11).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing Debian packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv=.venv-test
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r scripts/test-requirements.txt

# playwright-core only drives a browser; it never downloads one.
(cd crates/app/tests/ui && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
