#!/bin/bash
# install-kernel.sh: unpack a User-Mode-Linux kernel that boots on this machine into $OE_UML_DIR
# (default /opt/oe-testbed/uml), for oe-uml-run. Idempotent; needs root, apt and patchelf.
#
# Why not Debian 12's user-mode-linux (6.1, nor Debian 13's 6.12): it saves and restores a guest process's
# FPU state through ptrace(PTRACE_SETREGSET, NT_X86_XSTATE) with a fixed 832-byte buffer, and the host
# kernel refuses anything shorter than the CPU's whole XSAVE area (EFAULT). That area is 2,696 bytes with
# AVX-512 and 11,008 with AMX (our machines), so every guest process dies of SIGSEGV at once and the guest
# panics ("Attempted to kill init! exitcode=0x0000000b"). Later UML sizes the buffer from the host
# (`host_fp_size`). Debian unstable ships such a kernel; it needs a newer C library than Debian 12's, so
# that comes from the same suite, and the private copy of linux.uml is pointed at it with patchelf. The
# host's own files and libraries are untouched: everything lives under $OE_UML_DIR.
set -euo pipefail
DIR=${OE_UML_DIR:-/opt/oe-testbed/uml}
SUITE=${OE_UML_SUITE:-unstable}
[ "$(id -u)" = 0 ] || { echo "install-kernel.sh: run as root" >&2; exit 1; }
if [ -x "$DIR/linux.uml" ] && [ -d "$DIR/root/usr/lib/uml/modules" ]; then
  echo "install-kernel.sh: UML kernel $(ls "$DIR/root/usr/lib/uml/modules") in $DIR"; exit 0
fi
command -v patchelf >/dev/null || { echo "install-kernel.sh: apt-get install patchelf" >&2; exit 1; }

# The Debian archive this machine already uses (its main suite's address), with a private apt state.
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
archive() { apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' | awk -v c="$codename" '$2 == c { print $1; exit }'; }
uri=$(archive)
[ -n "$uri" ] || { apt-get update -q >/dev/null; uri=$(archive); }
[ -n "$uri" ] || { echo "install-kernel.sh: no Debian archive for $codename in apt's sources" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs"
echo "deb $uri $SUITE main" > "$tmp/sources.list"
apt=(-o Dir::Etc::SourceList="$tmp/sources.list" -o Dir::Etc::SourceParts=/nonexistent
     -o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp/cache" -o Acquire::Languages=none
     -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false -o APT::Sandbox::User=root)
echo "install-kernel.sh: fetching user-mode-linux and libc6 from $SUITE"
apt-get "${apt[@]}" update -q >/dev/null
(cd "$tmp/debs" && apt-get "${apt[@]}" download -q user-mode-linux libc6 >/dev/null)

rm -rf "$DIR"; mkdir -p "$DIR/root"
for deb in "$tmp"/debs/*.deb; do dpkg -x "$deb" "$DIR/root"; done
lib=$DIR/root/usr/lib/x86_64-linux-gnu
cp "$DIR/root/usr/bin/linux.uml" "$DIR/linux.uml"
patchelf --set-interpreter "$lib/ld-linux-x86-64.so.2" --set-rpath "$lib" "$DIR/linux.uml"
ls "$tmp/debs" > "$DIR/PACKAGES"
echo "install-kernel.sh: UML kernel $(ls "$DIR/root/usr/lib/uml/modules") in $DIR ($(tr '\n' ' ' < "$DIR/PACKAGES"))"
