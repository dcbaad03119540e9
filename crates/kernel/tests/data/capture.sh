#!/bin/sh
# capture.sh host|esp OUTDIR: regenerates the captured XFRM netlink bytes of the unit tests.
# Run as root from the repository root, after `cargo build -p oe-kernel --example capture`:
#   host: sh crates/kernel/tests/data/capture.sh host crates/kernel/tests/data/host
#         (this machine's kernel: policies, ACQUIRE, ALLOCSPI, larval EXPIRE, POLEXPIRE, refusals;
#          also records iproute2's requests for the same operations with strace)
#   esp:  OE_UML_RWDIR=$PWD/crates/kernel/tests/data integration/uml/oe-uml-run \
#           sh crates/kernel/tests/data/capture.sh esp crates/kernel/tests/data/esp
#         (inside the UML kernel, which has ESP: SAs of every algorithm, GETSA, soft/hard EXPIRE)
set -eu
MODE=$1 OUT=$2
BIN=${CARGO_TARGET_DIR:-target}/debug/examples/capture
NS=oe-kernel-capture
ip netns add $NS
trap 'ip netns del $NS' EXIT
ip -n $NS link set lo up
ip -n $NS link add va type veth peer name vb
ip -n $NS addr add 192.0.2.1/24 dev va
ip -n $NS addr add 2001:db8::1/64 dev va nodad
ip -n $NS link set va up
ip -n $NS link set vb up
mkdir -p "$OUT"
ip netns exec $NS "$BIN" "$MODE" "$OUT"
[ "$MODE" = host ] || exit 0
# iproute2's requests for the trap policy, the AES-GCM SA and ALLOCSPI (strace hex dump of sendmsg).
hexdump_of() { sed -n 's/^ | [0-9a-f]*  \(.\{48\}\).*/\1/p' "$1" | tr -d ' \n' | xxd -r -p; }
ipx() { name=$1; shift; ip netns exec $NS strace -e trace=sendmsg -e write=all -xx -o "$OUT/$name.trace" ip xfrm "$@" || true
        hexdump_of "$OUT/$name.trace" > "$OUT/$name.req"; rm "$OUT/$name.trace"; }
ip -n $NS xfrm policy flush; ip -n $NS xfrm state flush
ipx iproute2_newpolicy_trap4 policy add dir out src 0.0.0.0/0 dst 192.0.2.0/24 priority 1868903338 \
  tmpl proto esp mode transport reqid 1868890113
ipx iproute2_newsa_gcm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x01020304 reqid 1868890113 \
  mode transport replay-window 32 aead 'rfc4106(gcm(aes))' 0x1111111111111111111111111111111111111111 128 \
  sel src 192.0.2.1/32 dst 192.0.2.2/32
ipx iproute2_allocspi4 state allocspi src 192.0.2.2 dst 192.0.2.1 proto esp mode transport reqid 1868890113 \
  min 256 max 4294967295
