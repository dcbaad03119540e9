#!/bin/sh
# report-time.sh TEST-BINARY [ARGS...]: cargo's test runner in test-all.sh. Runs a libtest binary with its
# per-test wall times (`--report-time`, printed as `test NAME ... ok <1.234s>`). That libtest option is
# unstable: RUSTC_BOOTSTRAP=1 unlocks it in the test binary at run time only, so the build is the same as
# a developer's `cargo test` and nothing is recompiled.
exe=$1
shift
RUSTC_BOOTSTRAP=1 exec "$exe" "$@" -Z unstable-options --report-time
