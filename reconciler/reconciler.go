package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// DefaultInterval is how often the repository is fetched without a push
// webhook: Flux's default, a minute.
const DefaultInterval = time.Minute

// Publisher serves bundles; *bundles.Server implements it.
type Publisher interface {
	// Publish atomically replaces the served set, one bundle per cluster,
	// and returns the clusters whose content changed.
	Publish(set map[string]*bundle.Bundle) (changed []string, err error)
	// Active returns the revision and ETag served for a cluster.
	Active(cluster string) (revision, etag string, ok bool)
}

// Options configure a Reconciler.
type Options struct {
	Source    Source
	Publisher Publisher
	// Ref is the followed ref as push payloads name it (refs/heads/main);
	// pushes to other refs do not trigger a pass. Empty: every push does.
	Ref string
	// Interval between passes without a trigger (DefaultInterval if zero).
	Interval time.Duration
	// WebhookSecret authenticates push webhooks; without it the webhook
	// refuses every request.
	WebhookSecret []byte
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
	// OnPolicy, when set, is called after each pass that published a new
	// commit, with the validated policy it was built from (learning reads
	// the rulesets' modes and source files from it). It must not block.
	OnPolicy func(commit string, repo *policy.Repo)
}

// Reconciler runs passes from Source to Publisher.
type Reconciler struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	trigger chan struct{}
	pass    sync.Mutex // one pass at a time

	mu     sync.Mutex
	status Status
	// lastCommit is the commit of the last pass that got past fetching;
	// a pass on the same commit does nothing.
	lastCommit string
}

// New returns a Reconciler; Run starts it.
func New(o Options) (*Reconciler, error) {
	if o.Source == nil || o.Publisher == nil {
		return nil, errors.New("reconciler: a source and a publisher are required")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	r := &Reconciler{
		opts:    o,
		log:     o.Logger,
		metrics: m,
		trigger: make(chan struct{}, 1),
		status:  Status{Repository: o.Source.URL(), Ref: o.Ref, Clusters: map[string]ClusterStatus{}},
	}
	return r, nil
}

// Run reconciles at start, on every interval and on every trigger, until
// ctx is done.
func (r *Reconciler) Run(ctx context.Context) error {
	ticker := time.NewTicker(r.opts.Interval)
	defer ticker.Stop()
	for {
		_ = r.Reconcile(ctx) // recorded in status, metrics and logs
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-r.trigger:
		}
	}
}

// Trigger asks for a pass as soon as the current one (if any) ends.
// Triggers during a pass coalesce into one.
func (r *Reconciler) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Stage says where a pass failed.
type Stage string

// Stages of a pass.
const (
	StageFetch    Stage = "fetch"    // the repository could not be fetched: retried
	StageVerify   Stage = "verify"   // the commit is not signed by a trusted key: needs a new commit
	StageValidate Stage = "validate" // the policy is invalid: needs a new commit
	StageBuild    Stage = "build"    // a bundle did not build or compile: needs a new commit or release
	StagePublish  Stage = "publish"  // the server refused the set: retried
)

// Error is the typed outcome of a failed pass.
type Error struct {
	Stage  Stage
	Commit string
	Err    error
}

func (e *Error) Error() string {
	if e.Commit == "" {
		return fmt.Sprintf("%s: %v", e.Stage, e.Err)
	}
	return fmt.Sprintf("%s %s: %v", e.Stage, e.Commit, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Stalled reports whether the failure needs a human (a new commit) rather
// than a retry.
func (e *Error) Stalled() bool {
	return e.Stage == StageVerify || e.Stage == StageValidate || e.Stage == StageBuild
}

// Reconcile runs one pass. It returns nil when the served bundles are
// those of the fetched commit (published now or before), and an *Error
// otherwise.
func (r *Reconciler) Reconcile(ctx context.Context) error {
	r.pass.Lock()
	defer r.pass.Unlock()
	start := time.Now()
	err := r.reconcile(ctx)
	outcome := "success"
	var rerr *Error
	if errors.As(err, &rerr) {
		outcome = string(rerr.Stage)
		r.metrics.errors.WithLabelValues(string(rerr.Stage)).Inc()
		r.log.Error("reconcile failed", keyStage, rerr.Stage, keyCommit, rerr.Commit, keyError, rerr.Err.Error())
		r.recordError(rerr, start)
	}
	r.metrics.duration.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	return err
}

func (r *Reconciler) reconcile(ctx context.Context) error {
	snap, err := r.opts.Source.Sync(ctx)
	if err != nil {
		if errors.Is(err, ErrUnverified) {
			return &Error{Stage: StageVerify, Err: err}
		}
		return &Error{Stage: StageFetch, Err: err}
	}
	now := time.Now()
	r.mu.Lock()
	r.status.LastFetch = &Fetch{Commit: snap.Commit, Time: now}
	same := snap.Commit == r.lastCommit
	r.mu.Unlock()
	if same {
		return nil
	}
	repo, err := policy.Load(snap.FS)
	if err != nil {
		r.setLastCommit(snap.Commit)
		return &Error{Stage: StageValidate, Commit: snap.Commit, Err: err}
	}
	set := map[string]*bundle.Bundle{}
	for _, cluster := range repo.Clusters() {
		b, err := bundles.Build(repo, cluster, snap.Commit)
		if err != nil {
			r.setLastCommit(snap.Commit)
			return &Error{Stage: StageBuild, Commit: snap.Commit, Err: err}
		}
		set[cluster] = b
	}
	// Every bundle carries the same Rego library, so compiling one proves
	// they all activate; data cannot break compilation.
	for _, b := range set {
		if _, err := bundles.NewEngine(ctx, b); err != nil {
			r.setLastCommit(snap.Commit)
			return &Error{Stage: StageBuild, Commit: snap.Commit, Err: err}
		}
		break
	}
	changed, err := r.opts.Publisher.Publish(set)
	if err != nil {
		return &Error{Stage: StagePublish, Commit: snap.Commit, Err: err}
	}
	r.setLastCommit(snap.Commit)
	r.recordSuccess(snap.Commit, set, changed, now)
	if r.opts.OnPolicy != nil {
		r.opts.OnPolicy(snap.Commit, repo)
	}
	r.log.Info("bundles published", keyCommit, snap.Commit, keyClusters, len(set), keyChanged, changed)
	return nil
}

func (r *Reconciler) setLastCommit(c string) {
	r.mu.Lock()
	r.lastCommit = c
	r.mu.Unlock()
}
