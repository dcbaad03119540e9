#!/bin/bash
# setup-host.sh: install what the test bed needs on a Debian 12 machine (idempotent; needs root).
#  - the Debian packages listed in .ci/debian-packages
#  - Libreswan 4.10, unpacked privately under $OE_LIBRESWAN (default /opt/oe-testbed/libreswan), because
#    Debian's libreswan and strongswan packages conflict
#  - a User-Mode-Linux kernel that boots on CPUs with AVX-512 or AMX, unpacked privately under $OE_UML_DIR
#    (default /opt/oe-testbed/uml) by uml/install-kernel.sh
#  - cargo-fuzz (for the short fuzz runs), unless OE_NO_FUZZ=1
#  - cargo-deb (packaging/build-deb.sh; the package tests)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "setup-host.sh: run as root (it installs Debian packages)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
mapfile -t PKGS < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ROOT/.ci/debian-packages")
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-host.sh: installing ${missing[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

LSW=${OE_LIBRESWAN:-/opt/oe-testbed/libreswan}
if [ ! -x "$LSW/root/usr/libexec/ipsec/pluto" ]; then
  echo "setup-host.sh: unpacking Libreswan into $LSW"
  tmp=$(mktemp -d); (cd "$tmp" && apt-get download -q libreswan >/dev/null 2>&1 || { apt-get update -q && apt-get download -q libreswan; })
  rm -rf "$LSW"; mkdir -p "$LSW/root"; dpkg -x "$tmp"/libreswan_*.deb "$LSW/root"; rm -rf "$tmp"
fi
"$LSW/root/usr/libexec/ipsec/pluto" --version 2>&1 | head -1

bash "$ROOT/integration/uml/install-kernel.sh"

if [ "${OE_NO_FUZZ:-0}" != 1 ] && ! command -v cargo-fuzz >/dev/null; then
  cargo install --locked cargo-fuzz
fi

CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $CARGO_DEB_VERSION"; then
  cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi
