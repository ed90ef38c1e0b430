package imageverify_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/palisade-dev/palisade/imageverify"
	"github.com/palisade-dev/palisade/imageverify/imageverifytest"
	"github.com/palisade-dev/palisade/policy"
)

// clock is a settable clock for the caches.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// counting counts the registry requests that leave the verifier.
type counting struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

type fixture struct {
	clock     *clock
	transport *counting
	v         *imageverify.Verifier
}

func newFixture(t testing.TB, adjust ...func(*imageverify.Options)) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), transport: &counting{next: http.DefaultTransport}}
	o := imageverify.Options{Insecure: true, Transport: f.transport, Now: f.clock.Now}
	for _, a := range adjust {
		a(&o)
	}
	f.v = imageverify.New(o)
	return f
}

func (f *fixture) verify(t testing.TB, image string, attestors ...*imageverify.Attestor) *imageverify.ImageFacts {
	t.Helper()
	return f.verifyWith(t, image, nil, attestors...)
}

func (f *fixture) verifyWith(t testing.TB, image string, kc authn.Keychain, attestors ...*imageverify.Attestor) *imageverify.ImageFacts {
	t.Helper()
	return f.v.Verify(context.Background(), image, attestors, kc)
}

func keyAttestor(t testing.TB, name string, signers ...*imageverifytest.KeySigner) *imageverify.Attestor {
	t.Helper()
	var spec policy.AttestorSpec
	for _, s := range signers {
		spec.Keys = append(spec.Keys, policy.AttestorKey{PublicKey: s.PublicKeyPEM()})
	}
	a, err := imageverify.NewAttestor(name, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func keylessAttestor(t testing.TB, name string, k *imageverifytest.Keyless, issuer, subject, subjectRegExp string) *imageverify.Attestor {
	t.Helper()
	a, err := imageverify.NewAttestor(name, policy.AttestorSpec{Keyless: []policy.KeylessIdentity{{
		Issuer:         issuer,
		Subject:        subject,
		SubjectRegExp:  subjectRegExp,
		FulcioRoots:    k.FulcioRootPEM(),
		RekorPublicKey: k.RekorPublicKeyPEM(),
	}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func wantVerified(t testing.TB, f *imageverify.ImageFacts, attestor string) imageverify.SignatureFacts {
	t.Helper()
	if f.Error != "" {
		t.Fatalf("error: %s", f.Error)
	}
	s, ok := f.Signatures[attestor]
	if !ok {
		t.Fatalf("no signature facts for %s: %+v", attestor, f.Signatures)
	}
	if !s.Verified {
		t.Fatalf("%s: not verified: %s", attestor, s.Reason)
	}
	return s
}

func wantRefused(t testing.TB, f *imageverify.ImageFacts, attestor, reason string) {
	t.Helper()
	if f.Error != "" {
		t.Fatalf("error: %s", f.Error)
	}
	s, ok := f.Signatures[attestor]
	if !ok {
		t.Fatalf("no signature facts for %s: %+v", attestor, f.Signatures)
	}
	if s.Verified {
		t.Fatalf("%s: verified (%s), want refused with %q", attestor, s.Identity, reason)
	}
	if len(s.Reason) < len(reason) || s.Reason[:len(reason)] != reason {
		t.Fatalf("%s: reason %q, want prefix %q", attestor, s.Reason, reason)
	}
}
