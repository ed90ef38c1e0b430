#!/usr/bin/env bash
# Builds the helm command from the Go module proxy at the version pinned in
# hack/tools/helm/go.mod, into a cache outside the repository keyed by that
# version:
#
#   ${PALISADE_CACHE:-$HOME/.cache/palisade}/helm-v3.22.0/helm
#
# A second run finds the cached binary and builds nothing. The binary's
# directory is printed on stdout at the end; progress goes to stderr.
#
#   hack/build-helm.sh              build (or find) helm, print the directory
#   hack/build-helm.sh --print-dir  print the directory only, never build
#                                   (deploy's tests use this; helm may be missing)
set -euo pipefail

usage() {
	sed -n '2,14s/^# \{0,1\}//p' "$0"
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
tools="$root/hack/tools/helm"

# module_version GO_MOD MODULE prints the version GO_MOD requires of MODULE.
# It reads the file rather than asking go, so that --print-dir stays instant.
module_version() {
	awk -v m="$2" '{ sub("//.*", "") } !v { for (i = 1; i < NF; i++) if ($i == m) v = $(i + 1) } END { print v }' "$1"
}

helm_version="$(module_version "$tools/go.mod" helm.sh/helm/v3)"
client_go_version="$(module_version "$tools/go.mod" k8s.io/client-go)"
if [[ -z "$helm_version" || -z "$client_go_version" ]]; then
	echo "build-helm: cannot read the pinned versions from $tools/go.mod" >&2
	exit 1
fi

cache="${PALISADE_CACHE:-$HOME/.cache/palisade}"
dir="$cache/helm-$helm_version"

if $print_only; then
	echo "$dir"
	exit 0
fi

log() { echo "build-helm: $*" >&2; }

# No go.work from a parent directory, no toolchain download: the tools
# module builds with the Go on PATH or fails with its error.
export GOWORK=off GOTOOLCHAIN=local

# The stamp records what the binary was built from: a change to the tools
# module without a version change (a dependency bump) rebuilds it in place.
stamp() {
	(cd "$tools" && sha256sum go.mod go.sum)
}

if [[ -x "$dir/helm" && "$(cat "$dir/.stamp" 2>/dev/null)" == "$(stamp)" ]]; then
	log "cached: helm $helm_version"
	echo "$dir"
	exit 0
fi

# Static, as Helm releases it; also skips the C compiler.
export CGO_ENABLED=0
# -buildvcs=false keeps a checkout without .git (or a CI clone) buildable.
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

log "building helm $helm_version into $dir"
log "with cold Go caches this takes about 2 minutes on 2 cores; with warm ones, seconds"
start=$SECONDS

# Version stamps as Helm's own Makefile sets them: `helm version` names the
# release, and the Kubernetes version that `helm template` and `helm lint`
# assume (.Capabilities.KubeVersion, deprecation checks) follows the
# client-go that Helm is built with (v0.X.Y -> 1.X), not Helm's fallback 1.20.
k8s_minor="${client_go_version#v0.}"
k8s_minor="${k8s_minor%%.*}"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
	ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done

tmp="$dir.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"

log "[1/2] downloading modules (at $((SECONDS - start)) s)"
(cd "$tools" && go mod download)
log "[2/2] building helm (at $((SECONDS - start)) s)"
(cd "$tools" && go build -trimpath -ldflags "$ldflags" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm)

stamp >"$tmp/.stamp"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
log "done in $((SECONDS - start)) s"
echo "$dir"
