package pods

import (
	"strings"

	"github.com/palisade-dev/palisade/policy"
)

// image is what the facts say about a container's image.
type image struct {
	fullName string // registry/repository
	name     string // repository
	tag      string
	digest   string // sha256:…, the content that runs; empty when unknown
}

// dockerSchemes are the prefixes the dockershim and cri-dockerd put on
// a status's image and imageID: they are not part of the reference.
var dockerSchemes = []string{"docker-pullable://", "docker://"}

func trimScheme(s string) string {
	for _, p := range dockerSchemes {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return rest
		}
	}
	return s
}

// imageFacts derives the image facts of a container from its spec image
// and, once it has started, its status image and imageID.
//
// The status image wins over the spec: it is the reference the runtime
// resolved and runs ("nginx" in the spec is docker.io/library/nginx:latest
// there), and it is what Defend for Containers reports. A runtime that
// only knows the image by id reports it as "sha256:<hex>", or as a bare
// digest reference when it was pulled by digest: then the spec gives the
// name, and the tag when the status has none. The digest comes from
// imageID (repo@sha256:…), the content actually run, and only when
// there is none from a digest written in the image references. A
// reference with neither tag nor digest runs :latest, so that is its tag,
// as in policy.ParseImage's Reference.
func imageFacts(specImage, statusImage, imageID string) image {
	spec, specErr := policy.ParseImage(specImage)
	status, statusErr := policy.ParseImage(trimScheme(statusImage))
	var img image
	switch {
	case statusErr == nil && !isImageID(statusImage):
		img = image{fullName: status.Name, name: status.Repository, tag: status.Tag, digest: status.Digest}
		if img.tag == "" && specErr == nil && spec.Name == status.Name {
			img.tag = spec.Tag
		}
	case specErr == nil:
		img = image{fullName: spec.Name, name: spec.Repository, tag: spec.Tag, digest: spec.Digest}
	default:
		return image{}
	}
	// A bare image id (sha256:…, Docker's) is the digest of the image's
	// config, not of the manifest a policy pins: it is left out.
	if _, d, ok := strings.Cut(trimScheme(imageID), "@"); ok {
		img.digest = d
	}
	if img.tag == "" && img.digest == "" {
		img.tag = "latest"
	}
	return img
}

// isImageID reports whether s is an image id (sha256:<64 hex>), which
// ParseImage would otherwise read as the image "sha256" with a tag.
func isImageID(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range []byte(h) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
