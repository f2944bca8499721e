#!/usr/bin/env bash
# Builds mailferry's Debian package with cargo-deb and checks what it holds:
# the binary in /usr/bin, the settings as a conffile, and a systemd unit that
# starts `mailferry serve` as the user `mailferry` (and that systemd-analyze
# accepts, where it exists). Installs cargo-deb when it is missing.
#
#   scripts/check-deb.sh          release build without `demo`, the package to
#                                 ship: target/debian/mailferry_<version>-1_<arch>.deb
#   scripts/check-deb.sh dev      no build at all: packages target/debug/mailferry
#                                 as the tests built it (CI), into target/debian-dev/,
#                                 to check the packaging, not to ship
#
# CARGO_DEB_VERSION picks the cargo-deb to install (default below).
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${1:-release}"
cargo_deb_version="${CARGO_DEB_VERSION:-3.8.0}"
fail() {
    echo "check-deb: $*" >&2
    exit 1
}

command -v dpkg-deb >/dev/null || fail "dpkg-deb is missing: apt-get install dpkg"
if ! cargo deb --version >/dev/null 2>&1; then
    # Without default features cargo-deb needs neither liblzma-dev nor a C
    # compiler for a bundled liblzma: it compresses with the xz tool instead.
    command -v xz >/dev/null || fail "xz is missing: apt-get install xz-utils"
    echo "== installing cargo-deb $cargo_deb_version"
    cargo install cargo-deb --locked --version "=$cargo_deb_version" --no-default-features
fi
echo "== $(cargo deb --version)"

target_dir="${CARGO_TARGET_DIR:-target}"
case "$profile" in
release)
    # Runs `cargo build --release -p mailferry --no-default-features` first;
    # the .deb goes to target/debian/.
    deb="$(cargo deb -p mailferry)"
    ;;
dev | debug)
    if [ ! -x "$target_dir/debug/mailferry" ]; then
        # Features as the tests build them, so the tests' build stays fresh.
        echo "== $target_dir/debug/mailferry is missing: building it"
        cargo build -p mailferry --bin mailferry
    fi
    # cargo-deb warns that it is meant for release profiles: this package is
    # only inspected, never shipped. --fast: lighter compression.
    deb="$(cargo deb -p mailferry --no-build --profile dev --fast --output "$target_dir/debian-dev/")"
    ;;
*) fail "unknown profile \`$profile\`: use release (the default) or dev" ;;
esac
deb="$(printf '%s\n' "$deb" | tail -n 1)"
[ -f "$deb" ] || fail "cargo deb printed no package path (got: $deb)"
echo "== $deb"

echo "== dpkg-deb -I"
dpkg-deb -I "$deb"
echo "== dpkg-deb -c"
contents="$(dpkg-deb -c "$deb")"
echo "$contents"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp/root"
dpkg-deb -e "$deb" "$tmp/control"
unit="$tmp/root/usr/lib/systemd/system/mailferry.service"

echo "== checks"
check() {
    local what="$1"
    shift
    if "$@" >/dev/null; then
        echo "ok   $what"
    else
        echo "FAIL $what" >&2
        failed=1
    fi
}
failed=0
check "binary /usr/bin/mailferry, executable" test -x "$tmp/root/usr/bin/mailferry"
check "binary listed with mode 755" grep -Eq '^-rwxr-xr-x .* \./usr/bin/mailferry$' <<<"$contents"
check "binary runs" "$tmp/root/usr/bin/mailferry" --version
check "settings /etc/mailferry/mailferry.toml" test -f "$tmp/root/etc/mailferry/mailferry.toml"
check "settings are a conffile" grep -qx /etc/mailferry/mailferry.toml "$tmp/control/conffiles"
check "settings are not world-readable (0640)" grep -Eq '^-rw-r----- .* \./etc/mailferry/mailferry.toml$' <<<"$contents"
check "unit /usr/lib/systemd/system/mailferry.service" test -f "$unit"
check "unit: User=mailferry" grep -qx 'User=mailferry' "$unit"
check "unit: Group=mailferry" grep -qx 'Group=mailferry' "$unit"
check "unit: ExecStart=/usr/bin/mailferry serve" grep -qx 'ExecStart=/usr/bin/mailferry serve' "$unit"
check "unit: config from /etc/mailferry" grep -qx 'Environment=MAILFERRY_CONFIG=/etc/mailferry/mailferry.toml' "$unit"
check "unit: data in /var/lib/mailferry" grep -qx 'Environment=MAILFERRY_DATA_DIR=/var/lib/mailferry' "$unit"
check "unit: StateDirectory=mailferry" grep -qx 'StateDirectory=mailferry' "$unit"
check "unit: installed into multi-user.target" grep -qx 'WantedBy=multi-user.target' "$unit"
check "postinst makes the user mailferry" grep -q 'adduser --system' "$tmp/control/postinst"
check "postinst enables the unit" grep -q 'deb-systemd-helper enable mailferry.service' "$tmp/control/postinst"
check "postinst has no DEBHELPER token left" bash -c '! grep -q "#DEBHELPER#" "$1"' _ "$tmp/control/postinst"
check "postrm deletes data only on purge" grep -q 'rm -rf /var/lib/mailferry' "$tmp/control/postrm"
check "maintainer scripts parse" sh -n "$tmp/control/postinst" "$tmp/control/postrm" "$tmp/control/prerm"
check "depends on adduser" bash -c 'dpkg-deb -f "$1" Depends | grep -qw adduser' _ "$deb"

if command -v systemd-analyze >/dev/null; then
    # verify looks for ExecStart's binary on this host: point it at the
    # extracted one. It exits 0 on unknown keys and bad values, so any output
    # counts as a failure.
    sed "s|^ExecStart=/usr/bin/mailferry |ExecStart=$tmp/root/usr/bin/mailferry |" "$unit" >"$tmp/mailferry.service"
    if verify="$(systemd-analyze verify --man=no "$tmp/mailferry.service" 2>&1)" && [ -z "$verify" ]; then
        echo "ok   systemd-analyze verify"
    else
        echo "FAIL systemd-analyze verify:" >&2
        echo "$verify" >&2
        failed=1
    fi
else
    echo "skip systemd-analyze verify: systemd-analyze is not installed here"
fi

[ "$failed" = 0 ] || fail "the package $deb has problems (FAIL lines above)"
echo "check-deb: $deb is fine"
