# Package image holds the image rules: allowed registries, image name and
# tag rules, the latest tag and digest pinning. Images are compared in
# their normalised form (lib/images), so nginx and docker.io/library/nginx
# are the same image.
package palisade.rules.image

import data.palisade.lib.images
import data.palisade.lib.subject

findings(rules) := (((allowed_registries(rules) | image_name(rules)) | image_tag(rules)) | latest_tag(rules)) | digest_pinning(rules)

_images := [[c, subject.container_images[c.name]] | some c in subject.containers]

_finding(rule, c) := {"rule": rule, "field": "image", "value": c.image, "container": c.name}

allowed_registries(rules) := {f |
	registries := rules.allowedRegistries.registries
	some [c, img] in _images
	not _admitted(img, registries)
	f := _finding("allowedRegistries", c)
}

# A reference the container runtime cannot parse lies in no registry.
_admitted(img, registries) if {
	img.valid
	some r in registries
	images.under_registry(img.name, r)
}

# allow/deny rules: a value matching deny violates; so does a value
# matching none of allow when allow is given.
_match_violates(cfg, v) if images.matches_any(object.get(cfg, "deny", []), v)

_match_violates(cfg, v) if {
	allow := object.get(cfg, "allow", [])
	count(allow) > 0
	not images.matches_any(allow, v)
}

image_name(rules) := {f |
	cfg := rules.imageName
	some [c, img] in _images
	_match_violates(cfg, img.name)
	f := _finding("imageName", c)
}

# The tag an image runs with: as written, or latest when neither a tag nor
# a digest was written. A digest-only reference has no tag to judge.
effective_tag(img) := img.tag if img.tag != ""

effective_tag(img) := "latest" if {
	img.tag == ""
	img.digest == ""
}

image_tag(rules) := {f |
	cfg := rules.imageTag
	some [c, img] in _images
	_match_violates(cfg, effective_tag(img))
	f := _finding("imageTag", c)
}

latest_tag(rules) := {f |
	rules.latestTag
	some [c, img] in _images
	effective_tag(img) == "latest"
	f := _finding("latestTag", c)
}

digest_pinning(rules) := {f |
	rules.digestPinning
	some [c, img] in _images
	img.digest == ""
	f := _finding("digestPinning", c)
}
