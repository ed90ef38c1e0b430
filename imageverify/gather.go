package imageverify

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/open-policy-agent/opa/v1/ast"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-dev/palisade/bundles"
)

// SecretSource returns the registry credentials of a pull secret: the
// content of a kubernetes.io/dockerconfigjson (or legacy dockercfg)
// Secret.
type SecretSource interface {
	DockerConfig(ctx context.Context, namespace, name string) ([]byte, error)
}

// GathererOptions configure a Gatherer.
type GathererOptions struct {
	// Secrets reads the pods' imagePullSecrets; nil: they are not read
	// and only Keychain's credentials are used.
	Secrets SecretSource
	// Keychain holds credentials configured for Palisade itself (e.g. a
	// mounted dockerconfigjson), tried after the pod's; nil: anonymous.
	Keychain authn.Keychain
	// ReadFile reads attestor key files (policy.AttestorKey.File); nil:
	// os.ReadFile.
	ReadFile func(string) ([]byte, error)
	Log      *slog.Logger
}

// Gatherer turns what a bundle's verification rules want
// (bundles.Engine.Wanted: image → attestor names) into the facts Rego
// reads (bundles.Facts.Verification). It compiles the bundle's attestors
// once per revision, reads registry credentials from the pod's
// imagePullSecrets, and verifies the images concurrently. It satisfies
// admission.ImageFactGatherer.
type Gatherer struct {
	v    *Verifier
	o    GathererOptions
	mu   sync.Mutex
	last *compiledAttestors // of the last revision asked

	// values holds the AST form of facts the verifier handed out, by
	// pointer: cached facts come back as the same pointer, and converting
	// them (their attestations hold whole scan reports) was a third of a
	// warm review.
	valuesMu sync.Mutex
	values   map[*ImageFacts]ast.Value
}

// maxValues bounds Gatherer.values; past it the map starts over.
const maxValues = 4096

// compiledAttestors are one revision's attestors; broken holds why an
// attestor could not be compiled (a key file that is missing on this
// machine): its signatures are never verified, and the facts say why.
type compiledAttestors struct {
	revision string
	byName   map[string]*Attestor
	broken   map[string]string
}

// NewGatherer returns a Gatherer verifying with v.
func NewGatherer(v *Verifier, o GathererOptions) *Gatherer {
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Gatherer{v: v, o: o}
}

// Gather verifies the wanted images of an object in namespace whose pods
// pull with pullSecrets. Every wanted image gets facts: failures are
// facts (Rego decides what they mean). The values are the facts
// (ImageFacts) as AST values, ready for bundles.Facts.Verification.
func (g *Gatherer) Gather(ctx context.Context, eng *bundles.Engine, wanted map[string][]string, namespace string, pullSecrets []string) map[string]any {
	atts := g.attestors(eng)
	kc := g.keychain(ctx, namespace, pullSecrets)
	out := make(map[string]any, len(wanted))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for image, names := range wanted {
		var use []*Attestor
		for _, n := range names {
			if a := atts.byName[n]; a != nil {
				use = append(use, a)
			}
		}
		// What the caches hold is read here; only misses go to the
		// registry, side by side.
		if f, ok := g.v.Cached(image, use); ok {
			v := g.value(atts.withBroken(f, names))
			mu.Lock()
			out[image] = v
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			f := g.v.Verify(ctx, image, use, kc)
			f = atts.withBroken(f, names)
			v := g.value(f)
			mu.Lock()
			out[image] = v
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// value converts facts to an AST value, once per facts pointer.
func (g *Gatherer) value(f *ImageFacts) any {
	g.valuesMu.Lock()
	v, ok := g.values[f]
	g.valuesMu.Unlock()
	if ok {
		return v
	}
	v, err := ast.InterfaceToValue(f)
	if err != nil {
		// Unreachable for facts made of JSON values; the rule then sees
		// the image as unverifiable rather than a half-converted fact.
		return map[string]any{"error": "facts not convertible: " + err.Error()}
	}
	g.valuesMu.Lock()
	if g.values == nil || len(g.values) >= maxValues {
		g.values = make(map[*ImageFacts]ast.Value)
	}
	g.values[f] = v
	g.valuesMu.Unlock()
	return v
}

// withBroken adds the attestors that could not be compiled to facts (a
// copy: facts are shared with the cache).
func (c *compiledAttestors) withBroken(f *ImageFacts, names []string) *ImageFacts {
	var missing []string
	for _, n := range names {
		if _, ok := c.broken[n]; ok {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return f
	}
	cp := *f
	cp.Signatures = make(map[string]SignatureFacts, len(f.Signatures)+len(missing))
	for k, v := range f.Signatures {
		cp.Signatures[k] = v
	}
	cp.Attestations = make(map[string][]Attestation, len(f.Attestations)+len(missing))
	for k, v := range f.Attestations {
		cp.Attestations[k] = v
	}
	for _, n := range missing {
		cp.Signatures[n] = SignatureFacts{Reason: "attestor cannot be used: " + c.broken[n]}
		cp.Attestations[n] = []Attestation{}
	}
	return &cp
}

// attestors compiles the engine's attestors, once per revision.
func (g *Gatherer) attestors(eng *bundles.Engine) *compiledAttestors {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last != nil && g.last.revision == eng.Revision() {
		return g.last
	}
	c := &compiledAttestors{revision: eng.Revision(), byName: map[string]*Attestor{}, broken: map[string]string{}}
	specs := eng.Attestors()
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a, err := NewAttestor(n, specs[n], g.o.ReadFile)
		if err != nil {
			g.o.Log.Error("attestor cannot be used", "attestor", n, "revision", eng.Revision(), "error", err.Error())
			c.broken[n] = err.Error()
			continue
		}
		c.byName[n] = a
	}
	g.last = c
	return c
}

// keychain is the pod's pull secrets, then the configured credentials. A
// secret that cannot be read is logged and skipped: the registry may not
// need it, and if it does, the facts say that it refused.
func (g *Gatherer) keychain(ctx context.Context, namespace string, pullSecrets []string) authn.Keychain {
	var configs [][]byte
	if g.o.Secrets != nil {
		for _, name := range pullSecrets {
			cfg, err := g.o.Secrets.DockerConfig(ctx, namespace, name)
			if err != nil {
				g.o.Log.Warn("image pull secret unavailable", "namespace", namespace, "secret", name, "error", err.Error())
				continue
			}
			configs = append(configs, cfg)
		}
	}
	chain := []authn.Keychain{}
	if len(configs) > 0 {
		kc, err := KeychainFromDockerConfigs(configs...)
		if err != nil {
			g.o.Log.Warn("image pull secrets unreadable", "namespace", namespace, "error", err.Error())
		} else {
			chain = append(chain, kc)
		}
	}
	if g.o.Keychain != nil {
		chain = append(chain, g.o.Keychain)
	}
	if len(chain) == 0 {
		return nil
	}
	return authn.NewMultiKeychain(chain...)
}

// KubeSecrets reads pull secrets from the API server, keeping each for
// TTL so that admission requests do not each cost a GET.
type KubeSecrets struct {
	Client kubernetes.Interface
	TTL    time.Duration // default 30 s

	mu    sync.Mutex
	cache map[string]cachedSecret
}

type cachedSecret struct {
	config  []byte
	err     error
	expires time.Time
}

// DockerConfig returns the dockerconfigjson (or dockercfg) of a Secret.
func (k *KubeSecrets) DockerConfig(ctx context.Context, namespace, name string) ([]byte, error) {
	ttl := k.TTL
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	key := namespace + "/" + name
	k.mu.Lock()
	if c, ok := k.cache[key]; ok && time.Now().Before(c.expires) {
		k.mu.Unlock()
		return c.config, c.err
	}
	k.mu.Unlock()
	cfg, err := k.get(ctx, namespace, name)
	k.mu.Lock()
	if k.cache == nil || len(k.cache) > 10000 {
		k.cache = map[string]cachedSecret{}
	}
	k.cache[key] = cachedSecret{config: cfg, err: err, expires: time.Now().Add(ttl)}
	k.mu.Unlock()
	return cfg, err
}

func (k *KubeSecrets) get(ctx context.Context, namespace, name string) ([]byte, error) {
	s, err := k.Client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		return s.Data[corev1.DockerConfigJsonKey], nil
	case corev1.SecretTypeDockercfg:
		return s.Data[corev1.DockerConfigKey], nil
	}
	return nil, fmt.Errorf("secret %s/%s has type %s, not %s", namespace, name, s.Type, corev1.SecretTypeDockerConfigJson)
}
