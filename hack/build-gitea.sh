#!/usr/bin/env bash
# Builds Gitea (for learning/'s pull-request tests, through test/gitea) from
# the Go module proxy at a pinned version, into a cache outside the
# repository keyed by that version:
#
#   ${PALISADE_CACHE:-$HOME/.cache/palisade}/gitea-v1.26.0/gitea
#
# next to the module source's options/, templates/ and public/, which
# Gitea reads at run time (its STATIC_ROOT_PATH is that directory).
# A second run finds the cached binary and builds nothing. About 6 minutes
# with cold Go caches on 2 cores; seconds warm.
#
#   hack/build-gitea.sh              build (or find) gitea, print the directory
#   hack/build-gitea.sh --print-dir  print the directory only, never build
#                                    (test/gitea uses this; gitea may be missing)
#
# `go install code.gitea.io/gitea@version` fails on the replace directives
# of Gitea's go.mod, so the module is downloaded (go mod download -json),
# its source copied to a writable directory and built there, with cgo for
# SQLite as Gitea's own Makefile builds it (-tags 'sqlite sqlite_unlock_notify').
# Gitea 1.27 and later need a newer Go than the project's.
set -euo pipefail

version=v1.26.0

usage() {
	sed -n '2,21s/^# \{0,1\}//p' "$0"
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

cache="${PALISADE_CACHE:-$HOME/.cache/palisade}"
dir="$cache/gitea-$version"

if $print_only; then
	echo "$dir"
	exit 0
fi

log() { echo "build-gitea: $*" >&2; }

if [[ -x "$dir/gitea" && -d "$dir/options" && -d "$dir/templates" ]]; then
	log "cached: gitea $version"
	echo "$dir"
	exit 0
fi

# No go.work from a parent directory, no toolchain download: Gitea builds
# with the Go on PATH or fails with its error.
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=1
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
command -v gcc >/dev/null || command -v cc >/dev/null || {
	log "a C compiler is needed (cgo, for SQLite): apt-get install gcc"
	exit 1
}

log "building gitea $version into $dir"
log "with cold Go caches this takes about 6 minutes on 2 cores; with warm ones, seconds"
start=$SECONDS

tmp="$dir.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"

log "[1/3] downloading code.gitea.io/gitea@$version (at $((SECONDS - start)) s)"
# Run outside any module so that the project's go.mod plays no part.
src="$(cd "$tmp" && go mod download -json "code.gitea.io/gitea@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$src" || ! -f "$src/go.mod" ]]; then
	log "go mod download did not give the module's directory"
	exit 1
fi

# The module cache is read-only; Gitea's build wants to write nothing in
# its source, but go build with replace directives needs a main module of
# its own, which the copy is.
cp -r "$src" "$tmp/src"
chmod -R u+w "$tmp/src"

log "[2/3] downloading Gitea's dependencies (at $((SECONDS - start)) s)"
(cd "$tmp/src" && go mod download)

log "[3/3] building gitea (at $((SECONDS - start)) s)"
tags='sqlite sqlite_unlock_notify'
ldflags="-s -w -X 'main.MakeVersion=palisade' -X 'main.Version=${version#v}' -X 'main.Tags=$tags'"
(cd "$tmp/src" && go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$tmp/gitea" .)

# What STATIC_ROOT_PATH needs at run time: templates, options (locales,
# licences, .gitignore and README templates for auto-init) and public.
for d in options templates public; do
	cp -r "$tmp/src/$d" "$tmp/$d"
done
rm -rf "$tmp/src"

rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
log "done in $((SECONDS - start)) s"
echo "$dir"
