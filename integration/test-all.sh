#!/bin/bash
# test-all.sh: the whole test suite on a fresh Debian 12 machine (the README's test command; CI runs it).
#
# 1. installs what the tests need (integration/setup-host.sh: Debian packages, Libreswan unpacked privately,
#    cargo-fuzz);
# 2. builds the workspace and runs every test: unit tests, namespace tests on the host kernel, and tests that
#    re-run themselves inside a User-Mode-Linux kernel for real ESP;
# 3. runs each fuzz target briefly (OE_FUZZ_SECONDS, default 20; 0 skips).
# Needs root (namespaces, XFRM, daemons); re-executes itself with sudo when started by another user.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "test-all.sh: run as root (namespaces, XFRM, daemons)" >&2; exit 1; }
  exec sudo -E bash "$0" "$@"
fi
cd "$ROOT"
step() { printf '\n==== %s (%s)\n' "$*" "$(date +%T)"; }
T0=$(date +%s)

step "setting up the host"
bash integration/setup-host.sh

step "building"
cargo build --workspace --all-targets

step "testing (unit, namespace and UML-kernel tests)"
cargo test --workspace --no-fail-fast -- --test-threads="${OE_TEST_THREADS:-2}"

FUZZ=${OE_FUZZ_SECONDS:-20}
if [ "$FUZZ" != 0 ]; then
  for target in $(sed -n 's/^name = "\(.*\)"/\1/p' fuzz/Cargo.toml | grep -v '^oe-fuzz$'); do
    step "fuzzing $target for ${FUZZ}s"
    log=$(mktemp)
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz "$target" -- -max_total_time="$FUZZ" \
        -print_final_stats=1 > "$log" 2>&1; then
      tail -n 60 "$log"; echo "fuzz target $target failed"; exit 1
    fi
    grep -E '^Done|stat::number_of_executed_units' "$log" || true; rm -f "$log"
  done
fi
step "all tests passed in $(( $(date +%s) - T0 )) s"
