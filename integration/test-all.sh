#!/bin/bash
# test-all.sh: the whole test suite on a fresh Debian 12 machine (the README's test command; CI runs it).
#
# 1. checks the format first (cargo fmt, and rustfmt on the fuzz targets), so a format error fails fast;
# 2. installs what the tests need (integration/setup-host.sh: Debian packages, Libreswan and a UML kernel
#    unpacked privately, cargo-fuzz);
# 3. lints (cargo clippy on every target, warnings are errors);
# 4. builds the workspace and runs every test: unit tests, namespace tests on the host kernel, and tests that
#    re-run themselves inside a User-Mode-Linux kernel for real ESP; then lists the slowest tests;
# 5. runs each fuzz target briefly (OE_FUZZ_SECONDS, default 20; 0 skips).
# Each step's wall time is printed at the end, also when a step fails.
# Needs root (namespaces, XFRM, daemons); re-executes itself with sudo when started by another user.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "test-all.sh: run as root (namespaces, XFRM, daemons)" >&2; exit 1; }
  exec sudo -E bash "$0" "$@"
fi
cd "$ROOT"
T0=$(date +%s) STEP='' STEP_T0=0 TIMES='' LOG=$(mktemp -d /tmp/oe-test-all.XXXXXX)
end_step() {
  [ -n "$STEP" ] && TIMES+=$(printf '%7d s  %s' $(( $(date +%s) - STEP_T0 )) "$STEP")$'\n'
  STEP=''
}
step() { end_step; STEP=$* STEP_T0=$(date +%s); printf '\n==== %s (%s)\n' "$*" "$(date +%T)"; }
summary() {
  local rc=$?; end_step; rm -rf "$LOG"
  printf '\n==== wall time per step\n%s%7d s  in all (exit %d)\n' "$TIMES" $(( $(date +%s) - T0 )) "$rc"
}
trap summary EXIT

step "checking the format (cargo fmt --check)"
cargo fmt --all -- --check
rustfmt --check --edition 2021 fuzz/fuzz_targets/*.rs  # fuzz/ is a workspace of its own

step "setting up the host"
bash integration/setup-host.sh

step "linting (cargo clippy, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "building"
cargo build --workspace --all-targets

step "testing (unit, namespace and UML-kernel tests)"
# report-time.sh adds each test's wall time to its line; slowest-tests.sh reads them back.
rc=0
cargo test --workspace --no-fail-fast --config "target.'cfg(all())'.runner = '$ROOT/integration/report-time.sh'" \
  -- --test-threads="${OE_TEST_THREADS:-2}" 2>&1 | tee "$LOG/test.log" || rc=$?
sh integration/slowest-tests.sh "$LOG/test.log"
[ "$rc" = 0 ] || { echo "test-all.sh: tests failed (cargo test exit $rc)"; exit "$rc"; }

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
echo "all tests passed"
