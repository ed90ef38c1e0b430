package reconciler

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// MaxWebhookBody bounds a push payload. GitHub caps payloads at 25 MB but
// a push event for a policy repository is a few kilobytes; 1 MiB leaves
// room for large pushes without letting anyone stream into memory.
const MaxWebhookBody = 1 << 20

// pushEvent is the part of Gitea, GitHub and GitLab push payloads that
// matters: the ref pushed and the commit it now points at.
type pushEvent struct {
	Ref   string `json:"ref"`
	After string `json:"after"`
}

// WebhookHandler handles POST /hooks/git. It accepts a push when the
// payload is authenticated with the shared secret by one of:
//   - X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body> (GitHub, Gitea)
//   - X-Gitea-Signature: <hex HMAC-SHA256 of the body> (Gitea)
//   - X-Gitlab-Token: <the secret itself> (GitLab)
//
// Anything else gets 401. A push to the followed ref triggers a pass
// (202); a push to another ref, or another event, is acknowledged (200)
// and ignored.
func (r *Reconciler) WebhookHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		code := r.webhook(w, req)
		r.metrics.webhooks.WithLabelValues(strconv.Itoa(code)).Inc()
	})
}

func (r *Reconciler) webhook(w http.ResponseWriter, req *http.Request) int {
	fail := func(code int, msg string) int {
		r.log.Warn("webhook refused", keyRemote, req.RemoteAddr, keyError, msg)
		http.Error(w, msg, code)
		return code
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return fail(http.StatusMethodNotAllowed, "method not allowed")
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxWebhookBody+1))
	if err != nil {
		return fail(http.StatusBadRequest, "read body")
	}
	if len(body) > MaxWebhookBody {
		return fail(http.StatusRequestEntityTooLarge, "payload too large")
	}
	if !r.authenticated(req.Header, body) {
		return fail(http.StatusUnauthorized, "unauthenticated")
	}
	event := firstHeader(req.Header, "X-GitHub-Event", "X-Gitea-Event", "X-Gogs-Event", "X-Gitlab-Event")
	switch strings.ToLower(event) {
	case "", "push", "push hook", "tag push hook", "tag_push":
	case "ping":
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	default:
		r.log.Info("webhook ignored", keyEvent, event)
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	var push pushEvent
	if err := json.Unmarshal(body, &push); err != nil {
		return fail(http.StatusBadRequest, "payload is not a push event")
	}
	if r.opts.Ref != "" && push.Ref != r.opts.Ref {
		r.log.Info("webhook ignored", keyRef, push.Ref)
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	r.log.Info("webhook triggered reconcile", keyRef, push.Ref, keyCommit, push.After)
	r.Trigger()
	w.WriteHeader(http.StatusAccepted)
	return http.StatusAccepted
}

func (r *Reconciler) authenticated(h http.Header, body []byte) bool {
	secret := r.opts.WebhookSecret
	if len(secret) == 0 {
		return false // no secret configured: the webhook is off
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	want := mac.Sum(nil)
	if sig, ok := strings.CutPrefix(h.Get("X-Hub-Signature-256"), "sha256="); ok {
		got, err := hex.DecodeString(sig)
		return err == nil && hmac.Equal(got, want)
	}
	if sig := h.Get("X-Gitea-Signature"); sig != "" {
		got, err := hex.DecodeString(sig)
		return err == nil && hmac.Equal(got, want)
	}
	if token := h.Get("X-Gitlab-Token"); token != "" {
		return subtle.ConstantTimeCompare([]byte(token), secret) == 1
	}
	return false
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}
