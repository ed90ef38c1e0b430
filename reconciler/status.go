package reconciler

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/palisade-dev/palisade/policy"
)

// Status is what GET /status reports.
type Status struct {
	// Repository is the repository URL without credentials.
	Repository string `json:"repository"`
	Ref        string `json:"ref,omitempty"`
	// LastFetch is the last commit fetched, good or not.
	LastFetch *Fetch `json:"lastFetch,omitempty"`
	// Clusters are the bundles being served.
	Clusters map[string]ClusterStatus `json:"clusters"`
	// LastError is the last failed pass; cleared by the next success.
	LastError *ErrorStatus `json:"lastError,omitempty"`
}

// Fetch is one fetched commit.
type Fetch struct {
	Commit string    `json:"commit"`
	Time   time.Time `json:"time"`
}

// ClusterStatus is the last good bundle of one cluster.
type ClusterStatus struct {
	// Revision is the commit the served bundle was built from; it stays
	// put across commits that do not change this cluster's policy.
	Revision string `json:"revision"`
	ETag     string `json:"etag"`
	// Commit is the last good commit, which may be newer than Revision.
	Commit    string    `json:"commit"`
	Published time.Time `json:"published"`
}

// ErrorStatus describes a failed pass.
type ErrorStatus struct {
	Stage   Stage     `json:"stage"`
	Commit  string    `json:"commit,omitempty"`
	Time    time.Time `json:"time"`
	Stalled bool      `json:"stalled"`
	Message string    `json:"message"`
	// Errors are the policy errors, each with file, line and column.
	Errors []*policy.FieldError `json:"errors,omitempty"`
}

// Status returns a copy of the current status.
func (r *Reconciler) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.Clusters = make(map[string]ClusterStatus, len(r.status.Clusters))
	for k, v := range r.status.Clusters {
		s.Clusters[k] = v
	}
	return s
}

func (r *Reconciler) recordError(e *Error, at time.Time) {
	es := &ErrorStatus{Stage: e.Stage, Commit: e.Commit, Time: at, Stalled: e.Stalled(), Message: e.Err.Error()}
	var list policy.ErrorList
	if errors.As(e.Err, &list) {
		es.Errors = list
		es.Message = "invalid policy: " + list[0].Error()
		if len(list) > 1 {
			es.Message += " (and more)"
		}
	}
	r.mu.Lock()
	r.status.LastError = es
	r.mu.Unlock()
}

func (r *Reconciler) recordSuccess(commit string, set map[string]*bundle.Bundle, changed []string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.LastError = nil
	clusters := make(map[string]ClusterStatus, len(set))
	for cluster := range set {
		cs := r.status.Clusters[cluster]
		if rev, etag, ok := r.opts.Publisher.Active(cluster); ok {
			if rev != cs.Revision {
				cs.Published = at
			}
			cs.Revision, cs.ETag = rev, etag
		}
		cs.Commit = commit
		clusters[cluster] = cs
	}
	r.status.Clusters = clusters
	r.metrics.setActive(clusters)
}

// StatusHandler serves the status as JSON.
func (r *Reconciler) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r.Status())
	})
}
