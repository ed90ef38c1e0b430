#!/usr/bin/env bash
# Builds the cosign CLI (for imageverify's interoperability test) from the
# Go module proxy at the version imageverify/cosign_test.go pins, into a
# cache outside the repository keyed by that version:
#
#   ${PALISADE_CACHE:-$HOME/.cache/palisade}/cosign-<version>/cosign
#
# A second run finds the cached binary and builds nothing. About 8 minutes
# with cold Go caches on 2 cores (mostly module downloads); seconds warm.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's/^const cosignVersion = "\(v[^"]*\)"$/\1/p' "$root/imageverify/cosign_test.go")"
if [[ -z "$version" ]]; then
	echo "build-cosign: cannot read cosignVersion from imageverify/cosign_test.go" >&2
	exit 1
fi
cache="${PALISADE_CACHE:-$HOME/.cache/palisade}"
dir="$cache/cosign-$version"
if [[ -x "$dir/cosign" ]]; then
	echo "build-cosign: cached: cosign $version" >&2
	echo "$dir"
	exit 0
fi
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
tmp="$dir.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
echo "build-cosign: building cosign $version into $dir" >&2
start=$SECONDS
(cd "$tmp" && GOBIN="$tmp" go install -trimpath "github.com/sigstore/cosign/v2/cmd/cosign@$version")
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "build-cosign: done in $((SECONDS - start)) s" >&2
echo "$dir"
