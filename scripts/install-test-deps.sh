#!/usr/bin/env bash
# Installs what mailferry's tests need on a Debian machine: PostgreSQL
# (Debian package) and, in a virtualenv inside the repository, Microsoft's
# own Python client libraries (msal, msgraph-sdk) and croniter, which the
# tests use as independent checks.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(postgresql python3-venv)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
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
