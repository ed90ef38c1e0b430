package learning

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Errors of an Authenticator that the Handler answers with 401 and 403;
// any other error means the credentials could not be checked (503).
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("not allowed to send learning batches")
)

// Authenticator decides who sent a request to the learning endpoints.
// Authenticate returns the subject (for logs), or an error wrapping
// ErrUnauthenticated (no or bad credentials) or ErrForbidden (valid
// credentials of a subject not allowed), or another error when it could
// not decide.
type Authenticator interface {
	Authenticate(r *http.Request) (subject string, err error)
}

// bearerToken returns the request's "Authorization: Bearer" token.
func bearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", fmt.Errorf("%w: empty bearer token", ErrUnauthenticated)
	}
	return token, nil
}

// readTokenFile reads a token file, whitespace trimmed, failing on an
// empty one.
func readTokenFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("read token file %s: empty", path)
	}
	return token, nil
}

// TokenFileAuth accepts one static bearer token, read from a file on
// every request so that replacing the file (a rotated Secret) takes
// effect without a restart. The comparison takes constant time.
type TokenFileAuth struct {
	// Path is the file holding the token.
	Path string
	// Subject names the sender in logs; empty means "token-file".
	Subject string
}

var _ Authenticator = (*TokenFileAuth)(nil)

// Authenticate implements Authenticator.
func (a *TokenFileAuth) Authenticate(r *http.Request) (string, error) {
	got, err := bearerToken(r)
	if err != nil {
		return "", err
	}
	want, err := readTokenFile(a.Path)
	if err != nil {
		return "", err
	}
	// Hashing first makes the comparison constant-time in the length too.
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(g[:], w[:]) != 1 {
		return "", fmt.Errorf("%w: wrong token", ErrUnauthenticated)
	}
	if a.Subject == "" {
		return "token-file", nil
	}
	return a.Subject, nil
}

// Defaults of TokenReviewAuth.
const (
	// DefaultSensorUser is the user of the sensor's ServiceAccount token.
	DefaultSensorUser = "system:serviceaccount:palisade-system:palisade-sensor"
	// defaultReviewCacheTTL: a sensor sends every few seconds; a minute
	// spares the API server all but one review a minute per node, and a
	// revoked token is refused a minute later at most.
	defaultReviewCacheTTL = time.Minute
	defaultReviewTimeout  = 10 * time.Second
	// reviewCacheMax bounds the cache: one token per node.
	reviewCacheMax = 4096
)

// TokenReviewOptions configure TokenReviewAuth.
type TokenReviewOptions struct {
	// AllowedUsers are the usernames allowed to send; empty means
	// DefaultSensorUser.
	AllowedUsers []string
	// Audiences, when set, are the audiences the token must be issued for
	// (a projected token's audience); empty means the API server's.
	Audiences []string
	// CacheTTL is how long an accepted token is remembered; 0 means a
	// minute, negative disables the cache.
	CacheTTL time.Duration
	// Timeout bounds one TokenReview call; 0 means 10 seconds.
	Timeout time.Duration
}

// TokenReviewAuth accepts Kubernetes bearer tokens (a sensor's projected
// ServiceAccount token) that the API server's TokenReview authenticates
// as one of the allowed users. Accepted tokens are cached (by SHA-256)
// for CacheTTL; refused ones are not, so a fixed token works at once.
type TokenReviewAuth struct {
	client  kubernetes.Interface
	allowed []string
	aud     []string
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]reviewCacheEntry
}

type reviewCacheEntry struct {
	subject string
	expires time.Time
}

var _ Authenticator = (*TokenReviewAuth)(nil)

// NewTokenReviewAuth returns a TokenReviewAuth that calls the API server
// through client (which needs RBAC permission to create tokenreviews).
func NewTokenReviewAuth(client kubernetes.Interface, opts TokenReviewOptions) *TokenReviewAuth {
	if len(opts.AllowedUsers) == 0 {
		opts.AllowedUsers = []string{DefaultSensorUser}
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = defaultReviewCacheTTL
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultReviewTimeout
	}
	return &TokenReviewAuth{
		client:  client,
		allowed: slices.Clone(opts.AllowedUsers),
		aud:     slices.Clone(opts.Audiences),
		ttl:     opts.CacheTTL,
		timeout: opts.Timeout,
		now:     time.Now,
		cache:   map[[sha256.Size]byte]reviewCacheEntry{},
	}
}

// Authenticate implements Authenticator.
func (a *TokenReviewAuth) Authenticate(r *http.Request) (string, error) {
	token, err := bearerToken(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(token))
	if subject, ok := a.cached(sum); ok {
		return subject, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
	defer cancel()
	review, err := a.client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: a.aud},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("review token: %w", err)
	}
	st := review.Status
	if !st.Authenticated {
		return "", fmt.Errorf("%w: token not authenticated", ErrUnauthenticated)
	}
	if len(a.aud) > 0 && !slices.ContainsFunc(st.Audiences, func(s string) bool { return slices.Contains(a.aud, s) }) {
		return "", fmt.Errorf("%w: token not issued for %v", ErrUnauthenticated, a.aud)
	}
	if !slices.Contains(a.allowed, st.User.Username) {
		return "", fmt.Errorf("%w: user %s", ErrForbidden, st.User.Username)
	}
	a.remember(sum, st.User.Username)
	return st.User.Username, nil
}

func (a *TokenReviewAuth) cached(sum [sha256.Size]byte) (string, bool) {
	if a.ttl < 0 {
		return "", false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.cache[sum]
	if !ok {
		return "", false
	}
	if !a.now().Before(e.expires) {
		delete(a.cache, sum)
		return "", false
	}
	return e.subject, true
}

func (a *TokenReviewAuth) remember(sum [sha256.Size]byte, subject string) {
	if a.ttl < 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if len(a.cache) >= reviewCacheMax {
		for k, e := range a.cache {
			if !now.Before(e.expires) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= reviewCacheMax {
			clear(a.cache)
		}
	}
	a.cache[sum] = reviewCacheEntry{subject: subject, expires: now.Add(a.ttl)}
}
