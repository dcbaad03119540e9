#!/bin/sh
# slowest-tests.sh LOG [N]: the N (default 10) slowest tests and test binaries in the output of
# `cargo test` run through report-time.sh, for keeping the suite within its budget.
log=$1 n=${2:-10}
# The current binary: `Running tests/x.rs (target/debug/deps/x-0123abcd)` -> x; `Doc-tests oe_dns` -> doc:oe_dns.
BIN='/^ *Running /{ bin = $NF; gsub(/[()]/, "", bin); sub(/.*\//, "", bin); sub(/-[0-9a-f]+$/, "", bin) }
/^ *Doc-tests /{ bin = "doc:" $2 }
'
echo "slowest tests (wall time; tests of one binary run ${OE_TEST_THREADS:-2} at a time):"
awk "$BIN"'/^test .* <[0-9.]+s>$/{ t = $NF; gsub(/[<s>]/, "", t); printf "%9.1f s  %s  %s\n", t, bin, $2 }' "$log" |
  sort -rn | head -n "$n"
echo "slowest test binaries:"
# A failed UML test prints its guest's own `test result:` first: the binary's line comes last and wins.
awk "$BIN"'/^test result:/{ t[bin] = $NF } END { for (b in t) { sub(/s$/, "", t[b]); printf "%9.1f s  %s\n", t[b], b } }' "$log" |
  sort -rn | head -n "$n"
