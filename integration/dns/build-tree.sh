#!/bin/bash
# build-tree.sh OUT: build the private signed DNS tree of the test bed into OUT (zones, keys, server configs).
#
# Nothing is started here (see oe_integration::dns, which starts the servers inside a namespace).
# Env:
#   EXTRA_DIR   folder of "<zone>.extra" files (e.g. ed.example.extra): lines appended to that zone before signing
#   RESOLVER    listen address of the recursive resolver (default 127.0.0.53)
#   KEYS        folder of the committed test keys (default: ../keys beside this script)
# Servers (addresses baked into the zones; they live on the loopback of the fixture's namespace):
#   127.0.0.201  nsd    "."                               (ECDSA P-256, NSEC)
#   127.0.0.202  knotd  every child zone                  (see README.md for the list)
#   $RESOLVER    unbound, recursive, NOT validating, passes DNSSEC records through (clients validate)
#   127.0.0.204  unbound, recursive, validating with the private root anchor (a cross-check for tests)
#   127.0.0.205  nobody: "dead.example." is delegated here and the fixture drops queries to it (a zone that never answers)
set -euo pipefail
OUT=${1:?usage: build-tree.sh OUT}
HERE=$(cd "$(dirname "$0")" && pwd)
KEYS=${KEYS:-$HERE/../keys}
RESOLVER=${RESOLVER:-127.0.0.53}
ROOT_NS=127.0.0.201 CHILD_NS=127.0.0.202 VALIDATOR=127.0.0.204 DEAD_NS=127.0.0.205
mkdir -p "$OUT"/{work,nsd,knot/db,knot/run,unbound}
W=$OUT/work; cd "$W"
key() { awk -v n="$1" '$1==n {print $3}' "$KEYS/ipseckey.txt"; }
RSA=$(key host-rsa2048); RSA3=$(key host-rsa3072); P256=$(key host-p256); ED=$(key host-ed25519)
SOA='SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 300'

# zone NAME BODY: write an unsigned zone file NAME.zone with SOA, NS, the body and any extra lines.
zone() {
  { printf '$TTL 300\n$ORIGIN %s.\n@ %s\n@ NS ns.%s.\nns A %s\n' "$1" "$SOA" "$1" "$CHILD_NS"
    printf '%s\n' "$2"
    [ -n "${EXTRA_DIR:-}" ] && [ -f "$EXTRA_DIR/$1.extra" ] && cat "$EXTRA_DIR/$1.extra"
    true; } > "$1.zone"
}
# In-zone NS glue names are used for every child; the root carries the same glue.

zone rsa.example "host A 192.0.2.10
host AAAA 2001:db8::10
host IPSECKEY 10 0 2 . $RSA
nokey A 192.0.2.11"
zone ecdsa.example "host A 192.0.2.20
host AAAA 2001:db8::20
host IPSECKEY 10 0 3 . $P256
nokey A 192.0.2.21"
zone ed.example "host A 192.0.2.30
host AAAA 2001:db8::30
host IPSECKEY 10 0 4 . $ED
nokey A 192.0.2.31
tampered A 192.0.2.32
tampered IPSECKEY 10 0 4 . $ED
*.wild IPSECKEY 10 0 4 . $ED
gw IPSECKEY 10 1 2 192.0.2.38 $RSA
gw IPSECKEY 20 2 4 2001:db8::38 $ED
gw IPSECKEY 30 3 3 gw.ed.example. $P256"
zone nsec3.example "host A 192.0.2.40
host IPSECKEY 10 0 4 . $ED
nokey A 192.0.2.41"
zone insecure.example "host A 192.0.2.50
host IPSECKEY 10 0 4 . $ED"
zone expired.example "host A 192.0.2.60
host IPSECKEY 10 0 4 . $ED"
zone 2.0.192.in-addr.arpa "10 PTR host.rsa.example.
10 IPSECKEY 10 0 2 . $RSA
20 PTR host.ecdsa.example.
20 IPSECKEY 10 0 3 . $P256
30 PTR host.ed.example.
30 IPSECKEY 10 0 4 . $ED
31 PTR nokey.ed.example."
zone 100.51.198.in-addr.arpa "1 PTR one.insecure.example.
2 PTR two.insecure.example."
zone 8.b.d.0.1.0.0.2.ip6.arpa "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 PTR host.rsa.example.
0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 IPSECKEY 10 0 2 . $RSA
0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 PTR host.ed.example.
0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 IPSECKEY 10 0 4 . $ED"
: "$RSA3"   # RSA-3072 is published by tests that need it (Libreswan's minimum is 2192 bits)

# sign_bind ZONE ALG [extra dnssec-signzone args]: KSK+ZSK with BIND tools; writes ZONE.signed and ZONE.ds
sign_bind() {
  local z=$1 alg=$2; shift 2
  local bits=(); [ "$alg" = RSASHA256 ] && bits=(-b 2048)
  dnssec-keygen -q -a "$alg" "${bits[@]}" -n ZONE "$z." >/dev/null
  dnssec-keygen -q -a "$alg" "${bits[@]}" -f KSK -n ZONE "$z." >/dev/null
  cat K"$z".+*.key >> "$z.zone"
  dnssec-signzone -q "$@" -o "$z." -f "$z.signed" "$z.zone" >/dev/null
  dnssec-dsfromkey -2 "$(grep -l 'DNSKEY 257' K"$z".+*.key)" > "$z.ds"
}
# sign_ldns ZONE [ldns-signzone args]: Ed25519 KSK+ZSK with ldns tools (NSEC unless -n is given)
sign_ldns() {
  local z=$1 zsk ksk; shift
  zsk=$(ldns-keygen -a ED25519 "$z."); ksk=$(ldns-keygen -k -a ED25519 "$z."); rm -f "$zsk.ds" "$ksk.ds"
  ldns-signzone "$@" -o "$z." -f "$z.signed" "$z.zone" "$zsk" "$ksk" >/dev/null
  ldns-key2ds -n -2 "$ksk.key" > "$z.ds"
}
sign_bind rsa.example RSASHA256
sign_bind ecdsa.example ECDSAP256SHA256
sign_ldns ed.example
sign_bind nsec3.example ECDSAP256SHA256 -3 - -H 0
sign_bind expired.example ECDSAP256SHA256 -P -s 20200101000000 -e 20200201000000
sign_bind 2.0.192.in-addr.arpa ECDSAP256SHA256
sign_ldns 8.b.d.0.1.0.0.2.ip6.arpa
cp insecure.example.zone insecure.example.signed
cp 100.51.198.in-addr.arpa.zone 100.51.198.in-addr.arpa.signed

# Tamper after signing: change one byte of tampered.ed.example's IPSECKEY key, keep its RRSIG (-> bogus).
T='^tampered\.ed\.example\.[[:space:]].*IPSECKEY'
before=$(grep -E "$T" ed.example.signed)
sed -i -E "/$T/{s/([[:space:]]10 0 4 \. )A/\1B/;t;s/([[:space:]]10 0 4 \. )[^A]/\1A/}" ed.example.signed
[ "$before" != "$(grep -E "$T" ed.example.signed)" ]

# The root: delegations (with DS for signed children, none for insecure.example) and its own keys.
CHILDREN="rsa.example ecdsa.example ed.example nsec3.example insecure.example expired.example 2.0.192.in-addr.arpa 100.51.198.in-addr.arpa 8.b.d.0.1.0.0.2.ip6.arpa"
{ printf '$TTL 300\n$ORIGIN .\n@ SOA ns1. hostmaster.ns1. 1 3600 600 86400 300\n@ NS ns1.\nns1. A %s\n' "$ROOT_NS"
  for c in $CHILDREN; do printf '%s. NS ns.%s.\nns.%s. A %s\n' "$c" "$c" "$c" "$CHILD_NS"; done
  # dead.example.: an insecure delegation to a server that never answers (oe_integration::dns drops its packets).
  printf 'dead.example. NS ns.dead.example.\nns.dead.example. A %s\n' "$DEAD_NS"
  for c in $CHILDREN; do [ -f "$c.ds" ] && cat "$c.ds"; done; true; } > root.zone
dnssec-keygen -q -a ECDSAP256SHA256 -n ZONE . >/dev/null
dnssec-keygen -q -a ECDSAP256SHA256 -f KSK -n ZONE . >/dev/null
cat K.+*.key >> root.zone
dnssec-signzone -q -o . -f root.signed root.zone >/dev/null

# Trust anchors for clients: DNSKEY zone-file form, DS form, and BIND's trust-anchors clause (delv -a).
ROOTKSK=$(grep -l 'DNSKEY 257' K.+*.key)
grep -h 'DNSKEY' "$ROOTKSK" | grep -v '^;' > "$OUT/root.dnskey"
dnssec-dsfromkey -2 "$ROOTKSK" > "$OUT/root.ds"
awk '{k=""; for (i=7;i<=NF;i++) k=k $i; print "trust-anchors { \"" $1 "\" static-key " $4 " " $5 " " $6 " \"" k "\"; };"}' \
  "$OUT/root.dnskey" | sed 's/ IN / /' > "$OUT/root.bind-anchor"

cp root.signed "$OUT/nsd/"; for c in $CHILDREN; do cp "$c.signed" "$OUT/knot/"; done

cat > "$OUT/nsd/nsd.conf" <<NSD
server:
  ip-address: $ROOT_NS
  port: 53
  username: ""
  chroot: ""
  zonesdir: "$OUT/nsd"
  database: ""
  zonelistfile: "$OUT/nsd/zone.list"
  xfrdfile: "$OUT/nsd/xfrd.state"
  xfrdir: "$OUT/nsd"
  pidfile: "$OUT/nsd/nsd.pid"
  logfile: "$OUT/nsd/nsd.log"
  server-count: 1
  verbosity: 1
remote-control:
  control-enable: no
zone:
  name: "."
  zonefile: "root.signed"
NSD

{ cat <<KNOT
server:
  rundir: "$OUT/knot/run"
  listen: $CHILD_NS@53
  user: root:root
database:
  storage: "$OUT/knot/db"
log:
  - target: "$OUT/knot/knot.log"
    any: info
template:
  - id: default
    storage: "$OUT/knot"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
KNOT
  for c in $CHILDREN; do printf '  - domain: %s.\n    file: %s.signed\n' "$c" "$c"; done; } > "$OUT/knot/knot.conf"

printf '. 3600 IN NS ns1.\nns1. 3600 IN A %s\n' "$ROOT_NS" > "$OUT/unbound/root.hints"
# unbound_conf ADDR NAME MODULES [ANCHOR]
unbound_conf() {
  cat <<UNB
server:
  interface: $1
  port: 53
  do-ip6: no
  do-not-query-localhost: no
  access-control: 0.0.0.0/0 allow
  access-control: ::/0 allow
  username: ""
  chroot: ""
  directory: "$OUT/unbound"
  pidfile: "$OUT/unbound/$2.pid"
  logfile: "$OUT/unbound/$2.log"
  use-syslog: no
  verbosity: 1
  root-hints: "$OUT/unbound/root.hints"
  module-config: "$3"
  qname-minimisation: no
  local-zone: "2.0.192.in-addr.arpa." nodefault
  local-zone: "8.b.d.0.1.0.0.2.ip6.arpa." nodefault
  local-zone: "100.51.198.in-addr.arpa." nodefault
  local-zone: "example." nodefault
  local-zone: "invalid." nodefault
  ede: yes
  val-log-level: 2
${4:+  trust-anchor-file: \"$4\"}
remote-control:
  control-enable: no
UNB
}
unbound_conf "$RESOLVER" resolver iterator > "$OUT/unbound/resolver.conf"
unbound_conf "$VALIDATOR" validator "validator iterator" "$OUT/root.ds" > "$OUT/unbound/validator.conf"
echo "$RESOLVER" > "$OUT/resolver-address"
