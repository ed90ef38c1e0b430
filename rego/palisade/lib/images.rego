# Package images normalises image references the way the container runtime
# (and github.com/distribution/reference) does: ubuntu:focal is
# docker.io/library/ubuntu:focal, index.docker.io is docker.io, and a
# reference with neither tag nor digest means :latest.
package palisade.lib.images

# info returns {registry, repository, name, tag, digest, reference, valid}
# for a reference: from input.facts.images when Go gathered it (the
# engine does, with github.com/distribution/reference; a differential test
# keeps both equal), else parsed here, so that a plain OPA decides alike.
info(ref) := img if {
	img := input.facts.images[ref]
} else := object.union(parse(ref), {"valid": _is_valid(ref)})

_is_valid(ref) if valid(ref)

_is_valid(ref) := false if not valid(ref)

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

# Repository names are lower case, so distribution/reference reads an
# upper-case first segment as a host: Evil/x is pulled from the host Evil.
_is_host(h) if lower(h) != h

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

# valid is true when distribution/reference (and so the container runtime)
# accepts ref: lower-case path components, no empty, "." or ".." segment,
# tag and digest grammar, and not a bare 64-hex image ID.
valid(ref) if {
	regex.match(_reference_pattern, ref)
	not regex.match(`^[a-f0-9]{64}$`, ref)
}

_domain_component := `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`

_path_component := `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`

_reference_pattern := concat("", [
	`^(?:(?:`, _domain_component, `(?:\.`, _domain_component, `)*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?/)?`,
	_path_component, `(?:/`, _path_component, `)*`,
	`(?::[\w][\w.-]{0,127})?`,
	`(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,})?$`,
])

# matches is true when a matcher ({equals|contains|prefix|glob}) matches a
# value. Globs use / as the separator: * stays within a segment, ** crosses.
matches(m, v) if matches_any([m], v)

# matches_any is true when any of the matchers ms matches v (one call, no
# call per matcher: rules call it for every container).
matches_any(ms, v) if {
	some m in ms
	v == m.equals
}

matches_any(ms, v) if {
	some m in ms
	contains(v, m.contains)
}

matches_any(ms, v) if {
	some m in ms
	startswith(v, m.prefix)
}

matches_any(ms, v) if {
	some m in ms
	glob.match(m.glob, ["/"], v)
}

# under_registry is true when an image name lies in a registry entry
# (host, optionally with path segments): whole segments only, so
# myregistry.io does not admit myregistry.io.evil.com/x, and ghcr.io/acme
# does not admit ghcr.io/acme-evil/x. The name lies in the entry when it
# starts with registry_prefix(registry).
under_registry(name, registry) if startswith(name, registry_prefix(registry))

# registry_prefix is what the names under a registry entry start with:
# the entry and a segment separator.
registry_prefix(registry) := concat("", [registry, "/"])
