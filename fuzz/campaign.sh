#!/bin/bash
# The fuzz campaign (not run by CI; integration/test-all.sh runs each target for seconds only):
# every target in fuzz/Cargo.toml for at least RUNS executions (default 10 million), niced, one
# target at a time, with a corpus seeded from real bytes (integration/examples/fuzz_seeds.rs:
# captures of Libreswan's pluto and strongSwan's charon exchanging IKE, oe-ike's own hybrid
# exchange, the DNS fixture's answers, rtnetlink and XFRM datagrams).
#
# Usage (as root, from anywhere in the checkout):
#   fuzz/campaign.sh [RUNS] [OUT]          e.g. nohup fuzz/campaign.sh 10000000 /var/tmp/oe-fuzz &
#   OE_FUZZ_TARGETS="ike_message ike_kem" fuzz/campaign.sh ...   only these targets
#
# OUT (default /var/tmp/oe-fuzz-campaign) holds seeds/ (made once; delete it to capture again),
# corpus/<target>/ (what libFuzzer keeps, reused by the next campaign), artifacts/<target>/ (crash
# inputs), <target>.log, and summary.txt: per target the executions, the corpus size, the peak
# memory and the findings. A target that crashes is restarted with the remaining executions
# (at most three findings per target), so every target reaches RUNS unless it keeps crashing.
set -euo pipefail

RUNS=${1:-10000000}
OUT=${2:-/var/tmp/oe-fuzz-campaign}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUMMARY="$OUT/summary.txt"
NICE="nice -n 19"

log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$SUMMARY"; }

if [ ! -d "$OUT/seeds" ]; then
  log "capturing seeds into $OUT/seeds"
  $NICE cargo run -q -p oe-integration --example fuzz_seeds -- "$OUT/seeds.partial" | tee -a "$SUMMARY"
  mv "$OUT/seeds.partial" "$OUT/seeds"
fi

targets=${OE_FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"/\1/p' fuzz/Cargo.toml | grep -v '^oe-fuzz$')}
log "campaign: $RUNS executions per target; targets: $(echo $targets)"
log "building the targets"
RUSTC_BOOTSTRAP=1 $NICE cargo fuzz build --fuzz-dir fuzz >"$OUT/build.log" 2>&1 \
  || { tail -n 40 "$OUT/build.log"; exit 1; }

# Executions reported by libFuzzer in a log (the last "stat::number_of_executed_units", else the
# last status line's "#N").
executed() {
  local n
  n=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$1" | tail -n 1)
  [ -n "$n" ] || n=$(grep -o '^#[0-9]*' "$1" | tail -n 1 | tr -d '#')
  echo "${n:-0}"
}

for target in $targets; do
  corpus="$OUT/corpus/$target"
  artifacts="$OUT/artifacts/$target/"
  seeds="$OUT/seeds/$target"
  mkdir -p "$corpus" "$artifacts" "$seeds"
  done_runs=0
  findings=0
  peak=0
  start=$(date +%s)
  : >"$OUT/$target.log"
  while [ "$done_runs" -lt "$RUNS" ] && [ "$findings" -lt 3 ]; do
    left=$((RUNS - done_runs))
    part="$OUT/$target.part.log"
    rc=0
    RUSTC_BOOTSTRAP=1 $NICE cargo fuzz run --fuzz-dir fuzz "$target" "$corpus" "$seeds" -- \
      -runs="$left" -print_final_stats=1 -artifact_prefix="$artifacts" -timeout=10 \
      >"$part" 2>&1 || rc=$?
    cat "$part" >>"$OUT/$target.log"
    n=$(executed "$part")
    done_runs=$((done_runs + n))
    rss=$(sed -n 's/^stat::peak_rss_mb: *\([0-9]*\)/\1/p' "$part" | tail -n 1)
    [ "${rss:-0}" -gt "$peak" ] && peak=${rss:-0}
    if [ "$rc" != 0 ]; then
      findings=$((findings + 1))
      log "$target: FINDING (exit $rc) after $done_runs executions:"
      grep -E 'ERROR|panicked|SUMMARY|Test unit written' "$part" | head -n 8 | tee -a "$SUMMARY"
      [ "$n" -gt 0 ] || break # it cannot even start: do not loop
    fi
  done
  secs=$(( $(date +%s) - start ))
  log "$target: $done_runs executions in ${secs}s ($((done_runs / (secs > 0 ? secs : 1)))/s), corpus $(ls "$corpus" | wc -l) inputs, peak RSS ${peak} MB, findings $findings"
  rm -f "$OUT/$target.part.log"
done
log "campaign done; crash inputs (if any) under $OUT/artifacts"
