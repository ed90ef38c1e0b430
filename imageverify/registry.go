package imageverify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"
)

// layerLimits bound what one .sig or .att image may make us download.
type layerLimits struct {
	layers   int   // newest layers read; older ones are ignored
	perLayer int64 // larger layers are not downloaded (and so not verified)
	total    int64 // bytes over all layers
}

var (
	// A simple-signing payload is a few hundred bytes; images rarely carry
	// more than a handful of signatures.
	sigLimits = layerLimits{layers: 32, perLayer: 256 << 10, total: 2 << 20}
	// Vulnerability predicates of large images reach a few MiB; SBOM
	// attestations can be far larger and are skipped rather than let one
	// admission request download them.
	attLimits = layerLimits{layers: 32, perLayer: 4 << 20, total: 16 << 20}
)

// retryBackoff retries a flaking registry once, quickly: ggcr's default
// (1 s then 3 s) would spend the whole admission budget waiting.
var retryBackoff = remote.Backoff{Duration: 100e6, Factor: 2, Jitter: 0.1, Steps: 2}

// session is one Verify call's access to registries: one puller, so that
// the ping and token exchange with a registry happen once for resolution,
// signatures and attestations.
type session struct {
	kc        authn.Keychain
	transport http.RoundTripper

	once   sync.Once
	puller *remote.Puller
	err    error
}

func (s *session) get() (*remote.Puller, error) {
	s.once.Do(func() {
		s.puller, s.err = remote.NewPuller(
			remote.WithAuthFromKeychain(s.kc),
			remote.WithTransport(s.transport),
			remote.WithRetryBackoff(retryBackoff),
			remote.WithUserAgent("palisade-imageverify"),
		)
	})
	return s.puller, s.err
}

// resolve asks the registry for the digest a tag points at.
func (s *session) resolve(ctx context.Context, ref name.Reference) (string, error) {
	p, err := s.get()
	if err != nil {
		return "", err
	}
	desc, err := p.Head(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref.Name(), err)
	}
	return desc.Digest.String(), nil
}

// fetchLayers reads the layers of a cosign .sig or .att image. A missing
// tag is no error: the image is simply not signed (or attested).
func (s *session) fetchLayers(ctx context.Context, tag name.Tag, lim layerLimits) ([]layer, error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	desc, err := p.Get(ctx, tag)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("fetch %s: %w", tag.Name(), err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil || desc.MediaType.IsIndex() {
		return []layer{{err: "not an image manifest"}}, nil
	}
	descs := m.Layers
	if len(descs) > lim.layers {
		descs = descs[len(descs)-lim.layers:]
	}
	layers := make([]layer, len(descs))
	budget := lim.total
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	// Newest first, so that the byte budget keeps the newest layers.
	for i := len(descs) - 1; i >= 0; i-- {
		d := descs[i]
		layers[i] = layer{mediaType: string(d.MediaType), annotations: d.Annotations}
		if d.Size > lim.perLayer || d.Size > budget {
			layers[i].err = fmt.Sprintf("layer of %d bytes is over the limit", d.Size)
			continue
		}
		budget -= d.Size
		g.Go(func() error {
			data, err := readBlob(gctx, p, tag.Repository.Digest(d.Digest.String()), d.Size)
			if err != nil {
				return fmt.Errorf("fetch %s layer %s: %w", tag.Name(), d.Digest, err)
			}
			layers[i].data = data
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return layers, nil
}

// readBlob downloads a blob of a known size; ggcr checks its digest when
// the read reaches the end.
func readBlob(ctx context.Context, p *remote.Puller, ref name.Digest, size int64) ([]byte, error) {
	l, err := p.Layer(ctx, ref)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != size {
		return nil, fmt.Errorf("blob is %d bytes, manifest says %d", len(data), size)
	}
	return data, nil
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// cacheable reports whether a registry failure may be cached for everyone:
// an outage may, but an authentication failure or a missing image may
// depend on the credentials of the request (another pod's
// imagePullSecrets) and must not deny the next one.
func cacheable(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			return false
		}
	}
	return true
}

// plainHTTPGuard refuses plain-HTTP requests. ggcr falls back to HTTP for
// loopback and private-range registries; outside tests that would send
// credentials and tag resolutions over an unauthenticated channel.
type plainHTTPGuard struct{ next http.RoundTripper }

func (g plainHTTPGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Scheme, "https") {
		return nil, fmt.Errorf("plain HTTP to %s refused (Options.Insecure is off)", req.URL.Host)
	}
	return g.next.RoundTrip(req)
}

// anonymous is the keychain of a pod without pull secrets.
type anonymous struct{}

func (anonymous) Resolve(authn.Resource) (authn.Authenticator, error) { return authn.Anonymous, nil }
