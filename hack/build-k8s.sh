#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from the Go module proxy at the
# versions pinned in hack/tools/k8s/go.mod and hack/tools/etcd/go.mod, into a
# cache outside the repository keyed by those versions:
#
#   ${PALISADE_CACHE:-$HOME/.cache/palisade}/k8s-v1.37.2-etcd-v3.7.3/
#
# A second run finds the cached binaries and builds nothing. The binary
# directory is printed on stdout at the end; progress goes to stderr.
#
#   hack/build-k8s.sh              build (or find) the binaries, print the directory
#   hack/build-k8s.sh --print-dir  print the directory only, never build
#                                  (test/cluster uses this; the binaries may be missing)
set -euo pipefail

usage() {
	sed -n '2,13s/^# \{0,1\}//p' "$0"
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

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/hack/tools"

# module_version GO_MOD MODULE prints the version GO_MOD requires of MODULE.
# It reads the file rather than asking go, so that --print-dir stays instant.
module_version() {
	awk -v m="$2" '{ sub("//.*", "") } !v { for (i = 1; i < NF; i++) if ($i == m) v = $(i + 1) } END { print v }' "$1"
}

k8s_version="$(module_version "$tools/k8s/go.mod" k8s.io/kubernetes)"
etcd_version="$(module_version "$tools/etcd/go.mod" go.etcd.io/etcd/server/v3)"
if [[ -z "$k8s_version" || -z "$etcd_version" ]]; then
	echo "build-k8s: cannot read the pinned versions from $tools/*/go.mod" >&2
	exit 1
fi

cache="${PALISADE_CACHE:-$HOME/.cache/palisade}"
dir="$cache/k8s-$k8s_version-etcd-$etcd_version"

if $print_only; then
	echo "$dir"
	exit 0
fi

log() { echo "build-k8s: $*" >&2; }

# No go.work from a parent directory, no toolchain download: the tools
# modules build with the Go on PATH or fail with its error.
export GOWORK=off GOTOOLCHAIN=local

# The stamp records what the binaries were built from: a change to the
# tools modules without a version change (a dependency bump) rebuilds them
# in place. A new Go toolchain does not: that would cost 8 minutes for
# binaries that behave the same.
stamp() {
	(cd "$tools" && sha256sum k8s/go.mod k8s/go.sum etcd/go.mod etcd/go.sum)
}

bins=(kube-apiserver kubectl etcd)
cached=true
for b in "${bins[@]}"; do
	[[ -x "$dir/$b" ]] || cached=false
done
if $cached && [[ "$(cat "$dir/.stamp" 2>/dev/null)" == "$(stamp)" ]]; then
	log "cached: kube-apiserver, kubectl $k8s_version and etcd $etcd_version"
	echo "$dir"
	exit 0
fi

# Static binaries, as Kubernetes releases them; also skips the C compiler.
export CGO_ENABLED=0
# -buildvcs=false keeps a checkout without .git (or a CI clone) buildable.
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

log "building kube-apiserver, kubectl $k8s_version and etcd $etcd_version into $dir"
log "with cold Go caches this takes about 8 minutes on 2 cores and adds about 4 GB to them; with warm ones, seconds"

start=$SECONDS
step() {
	log "[$1/4] $2 (at $((SECONDS - start)) s)"
}

step 1 "downloading modules"
(cd "$tools/k8s" && go mod download)
(cd "$tools/etcd" && go mod download)

# Version stamps as Kubernetes' own build sets them (its hack/lib/version.sh);
# the build date is the release's publication time, so builds are reproducible.
k8s_date="$(cd "$tools/k8s" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
minor="${k8s_version#v1.}"
minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit= -X $pkg.buildDate=$k8s_date"
done

tmp="$dir.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"

step 2 "building kube-apiserver"
(cd "$tools/k8s" && go build -trimpath -ldflags "$ldflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
step 3 "building kubectl"
(cd "$tools/k8s" && go build -trimpath -ldflags "$ldflags" -o "$tmp/kubectl" k8s.io/kubernetes/cmd/kubectl)
step 4 "building etcd"
(cd "$tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3)

stamp >"$tmp/.stamp"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
log "done in $((SECONDS - start)) s"
echo "$dir"
