package imageverify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

// Options configures a Verifier. The zero value is usable.
type Options struct {
	// Timeout is the budget of one Verify call, registry round trips
	// included. Default 2 s: well inside the webhook's timeout (10 s by
	// default, at most 30 s), leaving room for the other images of a pod
	// and the policy evaluation.
	Timeout time.Duration
	// CacheTTL is how long facts are kept by digest. Default 10 min: a
	// digest's content never changes, only its signatures do (a new one,
	// or one deleted), and that is picked up after this.
	CacheTTL time.Duration
	// TagTTL is how long a tag's resolution is kept. Default 30 s: a tag
	// moved to another (unsigned) digest is caught after this.
	TagTTL time.Duration
	// ErrorTTL is how long a registry failure is kept, so that an outage
	// is not hammered by every admission request yet is retried soon.
	// Default 5 s. Failures that depend on the request's credentials
	// (401, 403, 404) are never cached.
	ErrorTTL time.Duration
	// CacheSize bounds the entries of each cache (facts, tags); the least
	// recently used go first. Default 10000.
	CacheSize int
	// Transport carries registry requests. Nil: remote.DefaultTransport.
	Transport http.RoundTripper
	// Insecure allows plain-HTTP registries (loopback tests). Off, plain
	// HTTP is refused even where go-containerregistry would fall back to
	// it (loopback and private-range hosts).
	Insecure bool
	// Now is the clock of the caches. Default time.Now.
	Now func() time.Time
	// Registerer receives the metrics; nil: none.
	Registerer prometheus.Registerer
	// Log receives debug records of why signatures failed and warnings of
	// registry failures; never credentials. Default slog.Default().
	Log *slog.Logger
}

// Verifier gathers image facts for admission and the scanner. It is safe
// for concurrent use.
type Verifier struct {
	o         Options
	transport http.RoundTripper
	nameOpts  []name.Option
	facts     *ttlCache[*ImageFacts]
	tags      *ttlCache[tagResult]
	flight    singleflight.Group
	m         *verifierMetrics
	log       *slog.Logger
}

type tagResult struct {
	digest string
	err    error
}

// New returns a Verifier with o's defaults filled in.
func New(o Options) *Verifier {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 10 * time.Minute
	}
	if o.TagTTL <= 0 {
		o.TagTTL = 30 * time.Second
	}
	if o.ErrorTTL <= 0 {
		o.ErrorTTL = 5 * time.Second
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	t := o.Transport
	if t == nil {
		t = remote.DefaultTransport
	}
	var nameOpts []name.Option
	if o.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	} else {
		t = plainHTTPGuard{next: t}
	}
	return &Verifier{
		o:         o,
		transport: t,
		nameOpts:  nameOpts,
		facts:     newTTLCache[*ImageFacts](o.CacheSize),
		tags:      newTTLCache[tagResult](o.CacheSize),
		m:         newVerifierMetrics(o.Registerer, o.Log),
		log:       o.Log,
	}
}

// Verify gathers the facts of one image reference, as written in the pod,
// for the given attestors, with the pod's registry credentials (kc; nil:
// anonymous). It never returns an error: failures are facts, and Rego
// decides what they mean. The result is shared with the cache and must
// not be modified.
func (v *Verifier) Verify(ctx context.Context, image string, attestors []*Attestor, kc authn.Keychain) *ImageFacts {
	start := time.Now()
	result := resultMiss
	defer func() { v.m.duration.WithLabelValues(result).Observe(time.Since(start).Seconds()) }()
	if kc == nil {
		kc = anonymous{}
	}
	ctx, cancel := context.WithTimeout(ctx, v.o.Timeout)
	defer cancel()
	sess := &session{kc: kc, transport: v.transport}

	ref, err := name.ParseReference(image, v.nameOpts...)
	if err != nil {
		result = resultError
		return failed("", attestors, "invalid image reference: "+err.Error())
	}
	var digest string
	if d, ok := ref.(name.Digest); ok {
		digest = d.DigestStr()
	} else if digest, err = v.resolve(ctx, sess, ref); err != nil {
		result = resultError
		return failed("", attestors, err.Error())
	}

	key := factsKey(ref.Context(), digest, attestors)
	if f, ok := v.facts.get(key, v.o.Now()); ok {
		v.m.cache.WithLabelValues(cacheFacts, resultHit).Inc()
		result = resultHit
		return f
	}
	v.m.cache.WithLabelValues(cacheFacts, resultMiss).Inc()
	ch := v.flight.DoChan("facts\x00"+key, func() (any, error) {
		// A caller that missed the cache just before an earlier flight
		// stored its result starts a flight of its own: the cache, not
		// the registry, answers it.
		if f, ok := v.facts.get(key, v.o.Now()); ok {
			return f, nil
		}
		// Detached from the caller: callers coalesced onto this flight
		// must not lose it when the first one gives up.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.o.Timeout)
		defer cancel()
		f, ttl := v.gather(fctx, sess, ref.Context(), digest, attestors)
		if ttl > 0 {
			v.facts.put(key, f, v.o.Now().Add(ttl))
		}
		return f, nil
	})
	select {
	case r := <-ch:
		f := r.Val.(*ImageFacts)
		if f.Error != "" {
			result = resultError
		}
		return f
	case <-ctx.Done():
		result = resultError
		return failed(digest, attestors, "timeout: "+ctx.Err().Error())
	}
}

// Cached returns what Verify would, when the caches alone answer it (the
// tag's resolution, if a tag, and the facts of the digest): no registry
// call, no goroutine, no timer. Gatherers try it first, so a warm review
// runs on the request's goroutine.
func (v *Verifier) Cached(image string, attestors []*Attestor) (*ImageFacts, bool) {
	start := time.Now()
	ref, err := name.ParseReference(image, v.nameOpts...)
	if err != nil {
		return nil, false
	}
	now := v.o.Now()
	var digest string
	if d, ok := ref.(name.Digest); ok {
		digest = d.DigestStr()
	} else if r, ok := v.tags.get(ref.Name(), now); ok && r.err == nil {
		digest = r.digest
	} else {
		return nil, false
	}
	f, ok := v.facts.get(factsKey(ref.Context(), digest, attestors), now)
	if !ok {
		return nil, false
	}
	v.m.cache.WithLabelValues(cacheFacts, resultHit).Inc()
	v.m.duration.WithLabelValues(resultHit).Observe(time.Since(start).Seconds())
	return f, true
}

// resolve returns the digest a tag points at, from the tag cache or the
// registry.
func (v *Verifier) resolve(ctx context.Context, sess *session, ref name.Reference) (string, error) {
	key := ref.Name()
	if r, ok := v.tags.get(key, v.o.Now()); ok {
		v.m.cache.WithLabelValues(cacheTags, resultHit).Inc()
		return r.digest, r.err
	}
	v.m.cache.WithLabelValues(cacheTags, resultMiss).Inc()
	ch := v.flight.DoChan("tag\x00"+key, func() (any, error) {
		if r, ok := v.tags.get(key, v.o.Now()); ok {
			return r, nil // an earlier flight stored it after this caller looked
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.o.Timeout)
		defer cancel()
		d, err := sess.resolve(rctx, ref)
		r := tagResult{digest: d, err: err}
		switch {
		case err == nil:
			v.tags.put(key, r, v.o.Now().Add(v.o.TagTTL))
		case cacheable(err):
			v.tags.put(key, r, v.o.Now().Add(v.o.ErrorTTL))
		}
		if err != nil {
			v.m.registryErrors.WithLabelValues(opResolve).Inc()
			v.log.Warn("image tag not resolved", keyImage, key, keyError, err.Error())
		}
		return r, nil
	})
	select {
	case r := <-ch:
		tr := r.Val.(tagResult)
		return tr.digest, tr.err
	case <-ctx.Done():
		return "", errors.New("resolve " + key + ": timeout: " + ctx.Err().Error())
	}
}

// gather fetches and verifies the signatures and attestations of one
// digest. It returns how long the facts may be cached (0: not at all).
func (v *Verifier) gather(ctx context.Context, sess *session, repo name.Repository, digest string, attestors []*Attestor) (*ImageFacts, time.Duration) {
	prefix := strings.Replace(digest, ":", "-", 1)
	var sigLayers, attLayers []layer
	var sigErr, attErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		attLayers, attErr = sess.fetchLayers(ctx, repo.Tag(prefix+".att"), attLimits)
	}()
	sigLayers, sigErr = sess.fetchLayers(ctx, repo.Tag(prefix+".sig"), sigLimits)
	<-done
	if sigErr != nil || attErr != nil {
		err := sigErr
		if sigErr != nil {
			v.m.registryErrors.WithLabelValues(opSignatures).Inc()
		}
		if attErr != nil {
			v.m.registryErrors.WithLabelValues(opAttestations).Inc()
			if err == nil {
				err = attErr
			}
		}
		v.log.Warn("image signatures not fetched", keyImage, repo.Name(), keyDigest, digest, keyError, err.Error())
		ttl := v.o.ErrorTTL
		if !cacheable(err) {
			ttl = 0
		}
		return failed(digest, attestors, err.Error()), ttl
	}

	f := &ImageFacts{
		Digest:       digest,
		Signatures:   make(map[string]SignatureFacts, len(attestors)),
		Attestations: make(map[string][]Attestation, len(attestors)),
	}
	sigs := make([]*item, len(sigLayers))
	for i, l := range sigLayers {
		sigs[i] = signatureItem(l, digest)
	}
	type attItem struct {
		it            *item
		predicateType string
		predicate     map[string]any
	}
	atts := make([]attItem, len(attLayers))
	for i, l := range attLayers {
		it, pt, p := attestationItem(l, digest)
		atts[i] = attItem{it, pt, p}
	}
	for _, a := range attestors {
		f.Signatures[a.name] = v.signatureFacts(a, sigs, repo, digest)
		verified := []Attestation{}
		for _, at := range atts {
			var fail failure
			vd := a.check(at.it, &fail)
			if !vd.ok {
				v.log.Debug("attestation not verified", keyImage, repo.Name(), keyDigest, digest, keyAttestor, a.name, keyReason, fail.reason)
				continue
			}
			if at.predicate == nil {
				continue
			}
			verified = append(verified, Attestation{
				PredicateType: at.predicateType,
				Predicate:     at.predicate,
				Timestamp:     attestationTime(at.predicate, vd.signed),
			})
		}
		f.Attestations[a.name] = verified
	}
	return f, v.o.CacheTTL
}

func (v *Verifier) signatureFacts(a *Attestor, sigs []*item, repo name.Repository, digest string) SignatureFacts {
	if len(sigs) == 0 {
		return SignatureFacts{Reason: ReasonNoSignature}
	}
	var fail failure
	for _, it := range sigs {
		if vd := a.check(it, &fail); vd.ok {
			return SignatureFacts{Verified: true, Identity: vd.identity, Issuer: vd.issuer}
		}
	}
	v.log.Debug("signature not verified", keyImage, repo.Name(), keyDigest, digest, keyAttestor, a.name, keyReason, fail.reason)
	return SignatureFacts{Reason: fail.reason}
}

// failed is the facts of an image whose registry could not be asked.
func failed(digest string, attestors []*Attestor, msg string) *ImageFacts {
	f := &ImageFacts{
		Digest:       digest,
		Error:        msg,
		Signatures:   make(map[string]SignatureFacts, len(attestors)),
		Attestations: make(map[string][]Attestation, len(attestors)),
	}
	for _, a := range attestors {
		f.Signatures[a.name] = SignatureFacts{Reason: ReasonRegistryError}
		f.Attestations[a.name] = []Attestation{}
	}
	return f
}

// factsKey identifies facts: the repository (signatures live beside the
// image, so one digest in two repositories may be signed differently), the
// digest, and the content of the attestors asked.
func factsKey(repo name.Repository, digest string, attestors []*Attestor) string {
	fps := make([]string, len(attestors))
	for i, a := range attestors {
		fps[i] = string(a.fingerprint[:])
	}
	slices.Sort(fps)
	fps = slices.Compact(fps)
	h := sha256.New()
	for _, fp := range fps {
		h.Write([]byte(fp))
	}
	return repo.Name() + "@" + digest + "#" + hex.EncodeToString(h.Sum(nil))
}
