#!/bin/bash
# build-deb.sh: builds the Debian package target/debian/oe_<version>-1_<arch>.deb with cargo-deb.
#
#   bash packaging/build-deb.sh            release build, then package
#   bash packaging/build-deb.sh --dev      package the existing debug build instead (for tests: no
#                                          release build)
#   extra arguments go to cargo-deb (e.g. --output DIR, --fast)
#
# Steps: build `oe`; run `oe generate` to write the man pages, shell completions and the commented
# conffile beside the binary (target/<profile>/oe-assets), so they come from the same clap
# definitions and built-in defaults as the binary itself; then `cargo deb --no-build --strip`.
# Needs cargo-deb (`cargo install --locked cargo-deb`; integration/setup-host.sh installs it) and
# dpkg-dev (dpkg-shlibdeps computes the library dependencies).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
dev=0
if [ "${1:-}" = --dev ]; then
  dev=1; shift
fi
command -v cargo-deb >/dev/null || { echo "build-deb.sh: cargo-deb missing: cargo install --locked cargo-deb" >&2; exit 1; }
target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target" ] || { echo "build-deb.sh: cannot find the target folder (cargo metadata)" >&2; exit 1; }
if [ "$dev" = 1 ]; then
  # cargo-deb packages release builds only: stage the debug binary where it looks for one, in a
  # target folder of its own.
  built="$target/debug/oe"
  [ -x "$built" ] || { echo "build-deb.sh: $built missing: cargo build -p oe-agent first" >&2; exit 1; }
  out="$target/debian"
  CARGO_TARGET_DIR=$(mktemp -d "$target/deb-dev.XXXXXX"); export CARGO_TARGET_DIR
  trap 'rm -rf "$CARGO_TARGET_DIR"' EXIT
  mkdir -p "$CARGO_TARGET_DIR/release" "$out"
  cp "$built" "$CARGO_TARGET_DIR/release/oe"
  target=$CARGO_TARGET_DIR
  # The package goes where a release one would, unless --output says otherwise.
  case " $* " in *" --output "*|*" -o "*) ;; *) set -- --output "$out" "$@" ;; esac
else
  cargo build --locked --release -p oe-agent
fi
oe="$target/release/oe"
rm -rf "$target/release/oe-assets"
"$oe" generate "$target/release/oe-assets" >/dev/null
# Debian policy 12.1: man pages compressed with gzip -9; -n keeps names and dates out (reproducible).
gzip -9n "$target/release/oe-assets/man/"*.8
# Stripped: the release profile keeps line tables for backtraces (add --dbgsym to ship them).
cargo deb -p oe-agent --no-build --strip "$@"
