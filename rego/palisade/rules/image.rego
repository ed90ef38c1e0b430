# Package image holds the image rules: allowed registries, image name and
# tag rules, the latest tag and digest pinning. Images are compared in
# their normalised form (lib/images), so nginx and docker.io/library/nginx
# are the same image.
#
# findings has one body per rule, each guarded by the rule's configuration
# in lib/decision.rules (see rules/container.rego).
package palisade.rules.image

import data.palisade.lib.decision
import data.palisade.lib.images
import data.palisade.lib.subject

# allowedRegistries: a reference that the container runtime cannot parse
# lies in no registry; a valid one must lie under a registry entry
# (images.under_registry, by prefix).
findings contains {"rule": "allowedRegistries", "field": "image", "value": c.image, "container": c.name} if {
	decision.rules.allowedRegistries.registries
	some [c, img] in _images
	not img.valid
}

findings contains {"rule": "allowedRegistries", "field": "image", "value": c.image, "container": c.name} if {
	registries := decision.rules.allowedRegistries.registries
	prefixes := [concat("", [r, "/"]) | some r in registries] # images.registry_prefix, inline
	some [c, img] in _images
	not strings.any_prefix_match(img.name, prefixes)
}

# imageName: the image name (registry and repository) matches deny, or
# none of allow when allow is given.
findings contains {"rule": "imageName", "field": "image", "value": c.image, "container": c.name} if {
	deny := object.get(decision.rules.imageName, "deny", [])
	some [c, img] in _images
	images.matches_any(deny, img.name)
}

findings contains {"rule": "imageName", "field": "image", "value": c.image, "container": c.name} if {
	allow := object.get(decision.rules.imageName, "allow", [])
	count(allow) > 0
	some [c, img] in _images
	not images.matches_any(allow, img.name)
}

# imageTag: the tag the image runs with (effective_tag) matches deny, or
# none of allow when allow is given.
findings contains {"rule": "imageTag", "field": "image", "value": c.image, "container": c.name} if {
	deny := object.get(decision.rules.imageTag, "deny", [])
	some [c, tag] in _tags
	images.matches_any(deny, tag)
}

findings contains {"rule": "imageTag", "field": "image", "value": c.image, "container": c.name} if {
	allow := object.get(decision.rules.imageTag, "allow", [])
	count(allow) > 0
	some [c, tag] in _tags
	not images.matches_any(allow, tag)
}

# latestTag: the image runs with the tag latest.
findings contains {"rule": "latestTag", "field": "image", "value": c.image, "container": c.name} if {
	decision.rules.latestTag
	some [c, "latest"] in _tags
}

# digestPinning: the reference names no digest.
findings contains {"rule": "digestPinning", "field": "image", "value": c.image, "container": c.name} if {
	decision.rules.digestPinning
	some [c, img] in _images
	img.digest == ""
}

# Each container with its normalised image.
_images := [[c, imgs[c.name]] |
	imgs := subject.container_images
	some c in subject.containers
]

# Each container with the tag its image runs with, when it has one.
_tags := [[c, effective_tag(img)] | some [c, img] in _images]

# The tag an image runs with: as written, or latest when neither a tag nor
# a digest was written. A digest-only reference has no tag to judge.
effective_tag(img) := img.tag if img.tag != ""

effective_tag(img) := "latest" if {
	img.tag == ""
	img.digest == ""
}
