package imageverifytest

import (
	"crypto/subtle"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Option adjusts a helper; each helper reads the options that concern it
// and ignores the others.
type Option func(*options)

type options struct {
	user, password string

	// signatures
	payloadDigest   string
	tamperPayload   bool
	signingTime     time.Time
	expiredAtSigned bool
	corruptSET      bool
	noBundle        bool
	replayBundle    bool
}

func collect(opts []Option) *options {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// WithBasicAuth makes StartRegistry require these credentials on every
// request, and makes the pushing helpers send them.
func WithBasicAuth(user, password string) Option {
	return func(o *options) { o.user, o.password = user, password }
}

func (o *options) remoteOptions() []remote.Option {
	if o.user == "" {
		return nil
	}
	return []remote.Option{remote.WithAuth(&authn.Basic{Username: o.user, Password: o.password})}
}

// StartRegistry starts go-containerregistry's in-memory registry on
// loopback over plain HTTP for the test's lifetime and returns its
// host:port. With WithBasicAuth it answers 401 to requests without the
// credentials, as a private registry does.
func StartRegistry(tb testing.TB, opts ...Option) string {
	tb.Helper()
	o := collect(opts)
	var h = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if o.user != "" {
		h = basicAuth(o.user, o.password, h)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func basicAuth(user, password string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="imageverifytest"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// PushRandomImage pushes a small random image to host/repo:tag and returns
// the reference and the manifest digest (sha256:...).
func PushRandomImage(tb testing.TB, host, repo, tag string, opts ...Option) (ref, digest string) {
	tb.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		tb.Fatal(err)
	}
	ref = host + "/" + repo + ":" + tag
	return ref, push(tb, ref, img, collect(opts))
}

func push(tb testing.TB, ref string, img v1.Image, o *options) string {
	tb.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Write(r, img, o.remoteOptions()...); err != nil {
		tb.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	return d.String()
}

// Retag points tag (host/repo:tag) at the image at digest, as a moved tag
// does.
func Retag(tb testing.TB, ref, digest string, opts ...Option) {
	tb.Helper()
	o := collect(opts)
	tag, err := name.NewTag(ref)
	if err != nil {
		tb.Fatal(err)
	}
	desc, err := remote.Get(tag.Repository.Digest(digest), o.remoteOptions()...)
	if err != nil {
		tb.Fatalf("get %s@%s: %v", ref, digest, err)
	}
	if err := remote.Tag(tag, desc, o.remoteOptions()...); err != nil {
		tb.Fatalf("tag %s: %v", ref, err)
	}
}
