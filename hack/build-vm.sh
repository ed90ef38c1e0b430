#!/usr/bin/env bash
# Fetches what test/vm boots: Debian 12's packaged kernel (whose default
# LSM list has bpf, so BPF LSM programs attach, unlike on this host) and
# busybox-static for the initramfs userland, from Debian's apt repositories
# only, into a cache outside the repository keyed by the kernel release:
#
#   ${PALISADE_CACHE:-$HOME/.cache/palisade}/vm-6.1.0-48-amd64/{vmlinuz,busybox,config}
#
# The kernel is the one Debian's linux-image-amd64 depends on today, or
# $PALISADE_VM_KERNEL (a release such as 6.1.0-48-amd64). A second run finds
# the cache and fetches nothing. The directory is printed on stdout at the
# end; progress goes to stderr.
#
#   hack/build-vm.sh              fetch (or find) the kernel, print the directory
#   hack/build-vm.sh --print-dir  print the directory only, never fetch
#                                 (test/vm uses this; the files may be missing)
set -euo pipefail

usage() {
	sed -n '2,16s/^# \{0,1\}//p' "$0"
}

print_only=false
case "${1:-}" in
"") ;;
--print-dir) print_only=true ;;
-h | --help)
	usage
	exit 0
	;;
*)
	usage >&2
	exit 2
	;;
esac

# The kernel release follows Debian's metapackage rather than a pinned ABI:
# Debian drops a superseded linux-image-6.1.0-N from its mirrors, so a pin
# would stop building on a fresh machine. apt-cache reads local lists only,
# so --print-dir stays quick and agrees with what a build fetches.
resolve() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1\.[0-9.-]+-amd64$/ { sub("^linux-image-", "", $2); print $2; exit }'
}
release="${PALISADE_VM_KERNEL:-}"
if [[ -z "$release" ]]; then
	release="$(resolve)"
fi
# A fresh machine (a CI container) may have no apt lists yet: a build, as
# root, fetches them once; --print-dir never touches the network.
if [[ -z "$release" ]] && ! $print_only && ((EUID == 0)); then
	echo "build-vm: no apt lists: apt-get update" >&2
	apt-get update -qq >&2
	release="$(resolve)"
fi
if [[ ! "$release" =~ ^6\.1\.[0-9]+-[0-9]+-amd64$ ]]; then
	echo "build-vm: no Debian 12 kernel found (linux-image-amd64 -> '${release}'); run apt-get update, or set PALISADE_VM_KERNEL=6.1.0-N-amd64" >&2
	exit 1
fi
kernel_pkg="linux-image-$release"

cache="${PALISADE_CACHE:-$HOME/.cache/palisade}"
dir="$cache/vm-$release"

if $print_only; then
	echo "$dir"
	exit 0
fi

log() { echo "build-vm: $*" >&2; }

# candidate PACKAGE prints the version apt would fetch.
candidate() {
	apt-cache policy "$1" | awk '$1 == "Candidate:" { print $2 }'
}

# The stamp records the package versions the files came from: a Debian
# rebuild of the same release, or a busybox security update, refetches.
stamp() {
	echo "$kernel_pkg $(candidate "$kernel_pkg")"
	echo "busybox-static $(candidate busybox-static)"
}

if [[ -f "$dir/vmlinuz" && -x "$dir/busybox" && "$(cat "$dir/.stamp" 2>/dev/null)" == "$(stamp)" ]]; then
	log "cached: $kernel_pkg"
	echo "$dir"
	exit 0
fi

log "fetching $kernel_pkg and busybox-static into $dir (about 70 MB from Debian's mirror)"
start=$SECONDS

tmp="$dir.tmp.$$"
# The packages go outside $HOME: apt-get download drops privileges to _apt
# when run as root, and _apt can neither enter /root nor write a 0700 dir.
debs="$(mktemp -d)"
trap 'rm -rf "$tmp" "$debs"' EXIT
mkdir -p "$tmp/x"
chmod 0777 "$debs"
(cd "$debs" && apt-get download -q "$kernel_pkg" busybox-static >&2) || {
	log "apt-get download failed: the lists may be stale (run apt-get update)"
	exit 1
}

# Only vmlinuz and the config: the initramfs needs no modules. Debian's 6.1
# builds in what test/vm uses (CONFIG_SERIAL_8250, DEVTMPFS, SECURITYFS,
# BPF_LSM, DEBUG_INFO_BTF, bpffs, cgroup2, debugfs, tracefs) and unpacks an
# uncompressed cpio itself; the check below keeps that true.
dpkg-deb -x "$debs"/linux-image-*.deb "$tmp/x"
dpkg-deb -x "$debs"/busybox-static_*.deb "$tmp/x"
cp "$tmp/x/boot/vmlinuz-$release" "$tmp/vmlinuz"
cp "$tmp/x/boot/config-$release" "$tmp/config"
cp "$tmp/x/bin/busybox" "$tmp/busybox"
chmod 0755 "$tmp/busybox"
for opt in SERIAL_8250 DEVTMPFS SECURITYFS BPF_LSM BPF_SYSCALL DEBUG_INFO_BTF BLK_DEV_INITRD CGROUPS; do
	grep -qx "CONFIG_$opt=y" "$tmp/config" || {
		log "$kernel_pkg lacks built-in CONFIG_$opt: test/vm would need its module"
		exit 1
	}
done
grep -q '^CONFIG_LSM=".*bpf' "$tmp/config" || log "note: bpf is not in $kernel_pkg's default CONFIG_LSM; test/vm sets lsm= itself"

rm -rf "$debs" "$tmp/x"
stamp >"$tmp/.stamp"
rm -rf "$dir"
mv "$tmp" "$dir"
trap 'rm -rf "$debs"' EXIT
log "done in $((SECONDS - start)) s"
echo "$dir"
