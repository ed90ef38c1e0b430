package learning

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/palisade-dev/palisade/test/cluster"
)

// transportReviewCounter counts the TokenReviews a client sends.
type transportReviewCounter struct {
	next  http.RoundTripper
	count *atomic.Int32
}

func (c transportReviewCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/tokenreviews") {
		c.count.Add(1)
	}
	return c.next.RoundTrip(r)
}

func transportBearerRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, StatusPath, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// TokenReviewAuth against a real kube-apiserver: ServiceAccount tokens
// from the TokenRequest API, as the kubelet projects them into the
// sensor's pod.
func TestTokenReviewAuthOnARealAPIServer(t *testing.T) {
	c := cluster.Start(t)
	ctx := context.Background()
	var reviews atomic.Int32
	cfg := rest.CopyConfig(c.RESTConfig)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return transportReviewCounter{next: rt, count: &reviews} })
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "palisade-system"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := func(sa string, audiences ...string) string {
		t.Helper()
		if _, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, sa, metav1.GetOptions{}); err != nil {
			if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		expiry := int64(600)
		tr, err := client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &expiry},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("TokenRequest for %s: %v", sa, err)
		}
		return tr.Status.Token
	}
	sensorToken := token("palisade-sensor")
	intruderToken := token("intruder")

	auth := NewTokenReviewAuth(client, TokenReviewOptions{})
	subject, err := auth.Authenticate(transportBearerRequest(sensorToken))
	if err != nil || subject != DefaultSensorUser {
		t.Fatalf("sensor token: %q, %v; want %s", subject, err, DefaultSensorUser)
	}
	n := reviews.Load()
	if _, err := auth.Authenticate(transportBearerRequest(sensorToken)); err != nil {
		t.Fatalf("sensor token again: %v", err)
	}
	if reviews.Load() != n {
		t.Error("an accepted token was reviewed again within the cache TTL")
	}
	auth.now = func() time.Time { return time.Now().Add(2 * defaultReviewCacheTTL) }
	if _, err := auth.Authenticate(transportBearerRequest(sensorToken)); err != nil || reviews.Load() != n+1 {
		t.Errorf("after the TTL: %v, %d reviews; want a new review that accepts", err, reviews.Load()-n)
	}

	for _, tt := range []struct {
		name, token string
		want        error
	}{
		{"another ServiceAccount's token", intruderToken, ErrForbidden},
		{"a forged token", sensorToken[:len(sensorToken)-4] + "AAAA", ErrUnauthenticated},
		{"garbage", "not-a-jwt", ErrUnauthenticated},
		{"no token", "", ErrUnauthenticated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // refusals are not cached: both ask again
				if _, err := auth.Authenticate(transportBearerRequest(tt.token)); !errors.Is(err, tt.want) {
					t.Errorf("Authenticate: %v, want %v", err, tt.want)
				}
			}
		})
	}

	t.Run("audience", func(t *testing.T) {
		audAuth := NewTokenReviewAuth(client, TokenReviewOptions{Audiences: []string{"palisade-controller"}})
		if _, err := audAuth.Authenticate(transportBearerRequest(token("palisade-sensor", "palisade-controller"))); err != nil {
			t.Errorf("token for the controller's audience: %v", err)
		}
		if _, err := audAuth.Authenticate(transportBearerRequest(sensorToken)); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("token for the API server's audience: %v, want ErrUnauthenticated", err)
		}
	})

	t.Run("allowed users", func(t *testing.T) {
		both := NewTokenReviewAuth(client, TokenReviewOptions{AllowedUsers: []string{DefaultSensorUser, "system:serviceaccount:palisade-system:intruder"}})
		if s, err := both.Authenticate(transportBearerRequest(intruderToken)); err != nil || !strings.HasSuffix(s, ":intruder") {
			t.Errorf("allowed second user: %q %v", s, err)
		}
	})

	// End to end: the sensor's sender with its projected token file, the
	// controller's handler and store.
	t.Run("sender to handler", func(t *testing.T) {
		dir := t.TempDir()
		tokenFile := filepath.Join(dir, "token")
		if err := os.WriteFile(tokenFile, []byte(sensorToken), 0o600); err != nil {
			t.Fatal(err)
		}
		store, err := OpenStore(filepath.Join(dir, "store"))
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		srv := httptest.NewServer(NewHandler(store, auth, slog.New(slog.DiscardHandler)))
		defer srv.Close()
		agg := NewAggregator("n1", AggregatorOptions{BootID: "b"})
		transportAddN(agg, 3, "/bin/a")
		s := transportSender(t, srv.URL, tokenFile, nil)
		if err := s.Send(ctx, agg.Flush()); err != nil {
			t.Fatalf("send with the sensor's token: %v", err)
		}
		if ev := transportEvidence(t, store, "rs", "/bin/a"); ev.Count != 3 {
			t.Errorf("count %d, want 3", ev.Count)
		}
		if err := os.WriteFile(tokenFile, []byte(intruderToken), 0o600); err != nil {
			t.Fatal(err)
		}
		transportAddN(agg, 1, "/bin/a")
		if err := s.Send(ctx, agg.Flush()); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("send with another ServiceAccount's token: %v, want 403", err)
		}
	})
}

func TestTokenReviewAuthUnreachableAPIServerIsNotAFailedLogin(t *testing.T) {
	client, err := kubernetes.NewForConfig(&rest.Config{Host: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	auth := NewTokenReviewAuth(client, TokenReviewOptions{Timeout: time.Second})
	_, err = auth.Authenticate(transportBearerRequest("some-token"))
	if err == nil || errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrForbidden) {
		t.Fatalf("Authenticate with the API server down: %v, want an error that is neither 401 nor 403", err)
	}
	now := transportT0
	store := transportOpenStore(t, t.TempDir(), &now)
	rec := httptest.NewRecorder()
	NewHandler(store, auth, slog.New(slog.DiscardHandler)).ServeHTTP(rec, transportBearerRequest("some-token"))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("handler: %d, want 503 (the sender retries)", rec.Code)
	}
}
