# Package images normalises image references the way the container runtime
# (and github.com/distribution/reference) does: ubuntu:focal is
# docker.io/library/ubuntu:focal, index.docker.io is docker.io, and a
# reference with neither tag nor digest means :latest.
package palisade.lib.images

# parse returns {registry, repository, name, tag, digest, reference}.
# tag and digest are "" when not written.
parse(ref) := {
	"registry": registry,
	"repository": repository,
	"name": concat("/", [registry, repository]),
	"tag": tag,
	"digest": digest,
	"reference": concat("", [registry, "/", repository, _tag_part(tag, digest), _digest_part(digest)]),
} if {
	[name_tag, digest] := _split_digest(ref)
	[host, path] := _split_host(name_tag)
	[path_only, tag] := _split_tag(path)
	registry := _canonical_host(lower(host))
	repository := _library(registry, path_only)
}

_split_digest(ref) := [substring(ref, 0, i), substring(ref, i + 1, -1)] if {
	i := indexof(ref, "@")
	i >= 0
} else := [ref, ""]

_split_host(s) := [segs[0], concat("/", array.slice(segs, 1, count(segs)))] if {
	segs := split(s, "/")
	count(segs) > 1
	_is_host(segs[0])
} else := ["docker.io", s]

_is_host(h) if contains(h, ".")

_is_host(h) if contains(h, ":")

_is_host("localhost")

# After the host is split off, a colon can only introduce the tag.
_split_tag(p) := [substring(p, 0, i), substring(p, i + 1, -1)] if {
	i := indexof(p, ":")
	i >= 0
} else := [p, ""]

_canonical_host("index.docker.io") := "docker.io"

_canonical_host(h) := h if h != "index.docker.io"

_library("docker.io", p) := concat("/", ["library", p]) if not contains(p, "/")

_library(r, p) := p if {
	r == "docker.io"
	contains(p, "/")
}

_library(r, p) := p if r != "docker.io"

_tag_part(tag, _) := concat("", [":", tag]) if tag != ""

_tag_part("", "") := ":latest"

_tag_part("", digest) := "" if digest != ""

_digest_part("") := ""

_digest_part(d) := concat("", ["@", d]) if d != ""

# matches is true when a matcher ({equals|contains|prefix|glob}) matches a
# value. Globs use / as the separator: * stays within a segment, ** crosses.
matches(m, v) if v == m.equals

matches(m, v) if contains(v, m.contains)

matches(m, v) if startswith(v, m.prefix)

matches(m, v) if glob.match(m.glob, ["/"], v)

matches_any(ms, v) if {
	some m in ms
	matches(m, v)
}

# under_registry is true when an image name lies in a registry entry
# (host, optionally with path segments): whole segments only, so
# myregistry.io does not admit myregistry.io.evil.com/x, and ghcr.io/acme
# does not admit ghcr.io/acme-evil/x.
under_registry(name, registry) if {
	segs := split(name, "/")
	want := split(registry, "/")
	count(segs) > count(want)
	array.slice(segs, 0, count(want)) == want
}
