package policy

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// Image is a container image reference normalised the way the container
// runtime resolves it: ubuntu:focal is docker.io/library/ubuntu:focal.
type Image struct {
	// Registry is the registry host (docker.io for Docker Hub).
	Registry string `json:"registry"`
	// Repository is the path within the registry (library/ubuntu).
	Repository string `json:"repository"`
	// Name is Registry/Repository.
	Name string `json:"name"`
	// Tag is the tag as written, empty when none was written.
	Tag string `json:"tag"`
	// Digest is the digest as written (sha256:...), empty when none.
	Digest string `json:"digest"`
	// Reference is the full normalised reference: name, the tag (latest
	// when neither a tag nor a digest was written) and the digest.
	Reference string `json:"reference"`
}

// ParseImage normalises an image reference.
func ParseImage(ref string) (Image, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return Image{}, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	// Registry host names are case-insensitive: lower-case them, as the
	// Rego library does, so that Registry.io and registry.io are one.
	img := Image{Registry: strings.ToLower(reference.Domain(named)), Repository: reference.Path(named)}
	img.Name = img.Registry + "/" + img.Repository
	img.Reference = img.Name
	if t, ok := named.(reference.Tagged); ok {
		img.Tag = t.Tag()
		img.Reference += ":" + img.Tag
	}
	if d, ok := named.(reference.Digested); ok {
		img.Digest = d.Digest().String()
		img.Reference += "@" + img.Digest
	} else if img.Tag == "" {
		img.Reference += ":latest"
	}
	return img, nil
}

// normalizeRegistry normalises an allowed-registry entry: a registry host,
// optionally followed by repository path segments. Docker Hub's aliases
// become docker.io, and a bare Docker Hub path gains its library/ prefix
// only when written as docker.io/<name> with one segment.
func normalizeRegistry(s string) (string, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "/")
	if s == "" {
		return "", fmt.Errorf("empty registry")
	}
	if strings.ContainsAny(s, "@ \t") || strings.Contains(s, "//") || strings.Contains(s, "://") {
		return "", fmt.Errorf("invalid registry %q: want a host with optional path, like ghcr.io/acme", s)
	}
	host, rest, _ := strings.Cut(s, "/")
	host = strings.ToLower(host)
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return "", fmt.Errorf("invalid registry %q: %q is not a registry host (want a name with a dot or port, or localhost)", s, host)
	}
	if host == "index.docker.io" {
		host = "docker.io"
	}
	if rest == "" {
		return host, nil
	}
	// Validate the path with the reference grammar.
	if _, err := reference.ParseNormalizedNamed(host + "/" + rest); err != nil {
		return "", fmt.Errorf("invalid registry path %q: %w", s, err)
	}
	return host + "/" + rest, nil
}
