package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// Defaults of Options.
const (
	// DefaultTerminateBudget bounds the pods one scan deletes in one
	// namespace: a policy that suddenly condemns every pod takes down ten
	// per namespace per scan, not the cluster.
	DefaultTerminateBudget = 10
	// DefaultMaxReportResults bounds the results of one PolicyReport: at
	// about 600 bytes a result, 1000 stay well below etcd's 1.5 MiB
	// object limit.
	DefaultMaxReportResults = 1000
)

// Names Palisade gives the objects it writes.
const (
	// IsolatedLabel marks an isolated pod; its value is the rule.
	IsolatedLabel = "palisade.dev/isolated"
	// NetworkPolicyName is the NetworkPolicy that isolates the labelled
	// pods of a namespace.
	NetworkPolicyName = "palisade-isolate"
	// ManagedByLabel (with value ManagedBy) marks what the scanner owns.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "palisade"
	// ReportName is the name of the PolicyReport of each namespace and of
	// the ClusterPolicyReport.
	ReportName = "palisade"
	// EventReason is the reason of the Events on violating pods.
	EventReason = "PolicyViolation"
	// Component is the source of the scanner's Events.
	Component = "palisade-scanner"
)

// Annotations of the reports.
const (
	AnnotationRevision    = "palisade.dev/revision"
	AnnotationOmitted     = "palisade.dev/results-omitted"
	AnnotationFingerprint = "palisade.dev/fingerprint"
)

// syncTimeout bounds the wait for the informer caches. Listing is quick
// even in a large cluster; what does not sync by then lacks permissions
// or cannot reach the API server, and a restart says so better than a
// scanner that never scans.
const syncTimeout = 2 * time.Minute

// noEngineRetry is how often a scan that found no active bundle is tried
// again, in case the engine source does not trigger on activation.
const noEngineRetry = 2 * time.Second

// ErrRunning is returned by Run when the scanner is already running.
var ErrRunning = errors.New("scanner is already running")

// EngineSource returns the engine that decides, nil while no bundle is
// active. *bundles.Client satisfies it.
type EngineSource interface {
	Engine() *bundles.Engine
}

var _ EngineSource = (*bundles.Client)(nil)

// ImageFactGatherer gathers image verification facts, as admission does;
// see bundles.ImageFactGatherer.
type ImageFactGatherer = bundles.ImageFactGatherer

// Options configure a Scanner.
type Options struct {
	// Kube reads pods and namespaces and writes Events, labels,
	// NetworkPolicies and deletions (required).
	Kube kubernetes.Interface
	// Dynamic writes the PolicyReports (nil: no reports).
	Dynamic dynamic.Interface
	// Engines gives the active engine (required).
	Engines EngineSource
	// Images gathers image verification facts when the bundle has
	// verification rules. Nil: none are gathered, and the rules find the
	// images unverifiable (their registryUnavailable action applies).
	Images ImageFactGatherer
	// SystemNamespace is where Palisade runs: never scanned, never acted
	// on, and neither is kube-system (policy.DefaultSystemNamespace if
	// empty).
	SystemNamespace string
	// Now is the evaluation time of a scan (nil: time.Now). Rego never
	// reads the clock; expiring exceptions compare with it.
	Now func() time.Time
	// TerminateBudget bounds the pods one scan deletes per namespace
	// (DefaultTerminateBudget if zero or less). The rest are held back:
	// logged, counted and reported, and deleted by later scans.
	TerminateBudget int
	// MaxReportResults bounds the results of one report
	// (DefaultMaxReportResults if zero or less). The summary counts all.
	MaxReportResults int
	Logger           *slog.Logger
	// Registerer receives the metrics (nil: no metrics).
	Registerer prometheus.Registerer
}

// Scanner re-evaluates running pods on the schedules of the active bundle
// and acts on the violations. Create it with New and start it with Run.
type Scanner struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	sched   *scheduler
	reports *reporter

	factories  []informers.SharedInformerFactory
	synced     []cache.InformerSynced
	podIndexer cache.Indexer // the pod informer's store (benchmarks fill it)
	nsIndexer  cache.Indexer // the namespace informer's store
	pods       corev1listers.PodLister
	namespaces corev1listers.NamespaceLister
	netpols    networkinglisters.NetworkPolicyLister

	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	recorded    map[eventKey]time.Time // owned by the scan: see event

	trigger chan struct{} // capacity 1: a pending full scan
	running atomic.Bool
	ready   atomic.Bool
}

// New checks the options and returns a scanner. It creates the informers
// but starts nothing; Run does.
func New(o Options) (*Scanner, error) {
	switch {
	case o.Kube == nil:
		return nil, errors.New("new scanner: no Kubernetes client")
	case o.Engines == nil:
		return nil, errors.New("new scanner: no engine source")
	}
	if o.SystemNamespace == "" {
		o.SystemNamespace = policy.DefaultSystemNamespace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TerminateBudget <= 0 {
		o.TerminateBudget = DefaultTerminateBudget
	}
	if o.MaxReportResults <= 0 {
		o.MaxReportResults = DefaultMaxReportResults
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scanner{
		opts:    o,
		log:     o.Logger,
		metrics: newMetrics(o.Registerer, o.Logger),
		sched:   newScheduler(o.Logger),
		trigger: make(chan struct{}, 1),
	}
	s.reports = newReporter(o.Dynamic, o.MaxReportResults, s.log, s.metrics)

	// One watch each, no periodic resync: scans read the caches on their
	// own schedule. Stopped pods are not cached at all; the field selector
	// keeps them out on the server side.
	podFactory := informers.NewSharedInformerFactoryWithOptions(o.Kube, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.AndSelectors(
				fields.OneTermNotEqualSelector("status.phase", string(corev1.PodSucceeded)),
				fields.OneTermNotEqualSelector("status.phase", string(corev1.PodFailed)),
			).String()
		}),
		// Rules never read managed fields; a large cluster's pods keep
		// most of their memory there.
		informers.WithTransform(stripManagedFields))
	nsFactory := informers.NewSharedInformerFactoryWithOptions(o.Kube, 0, informers.WithTransform(stripManagedFields))
	// Only Palisade's own NetworkPolicy, one per namespace at most.
	npFactory := informers.NewSharedInformerFactoryWithOptions(o.Kube, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", NetworkPolicyName).String()
		}),
		informers.WithTransform(stripManagedFields))
	podInf := podFactory.Core().V1().Pods()
	nsInf := nsFactory.Core().V1().Namespaces()
	npInf := npFactory.Networking().V1().NetworkPolicies()
	s.pods, s.namespaces, s.netpols = podInf.Lister(), nsInf.Lister(), npInf.Lister()
	s.podIndexer, s.nsIndexer = podInf.Informer().GetIndexer(), nsInf.Informer().GetIndexer()
	s.synced = []cache.InformerSynced{podInf.Informer().HasSynced, nsInf.Informer().HasSynced, npInf.Informer().HasSynced}
	s.factories = []informers.SharedInformerFactory{podFactory, nsFactory, npFactory}

	s.broadcaster = record.NewBroadcaster()
	s.recorder = s.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: Component})
	s.recorded = map[eventKey]time.Time{}
	return s, nil
}

// stripManagedFields is the informers' transform.
func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// Trigger asks for a full scan as soon as possible: at once when the
// scanner is idle, after the scan in progress otherwise. Triggers that
// arrive while one is pending are merged into it. It never blocks, and is
// safe to call before Run (the scan then runs when Run starts), from any
// goroutine, e.g. from bundles.ClientOptions.OnActivate.
func (s *Scanner) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Ready reports whether the scanner's caches have synced.
func (s *Scanner) Ready() bool { return s.ready.Load() }

// Run starts the informers, waits for their caches, runs a full scan and
// then scans on the schedules of the active bundle, and a full scan on
// every Trigger, until ctx is done; it returns nil then. Scans never
// overlap. It returns ErrRunning if called while running, and an error
// if the caches cannot sync.
func (s *Scanner) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	if err := s.start(ctx); err != nil {
		return err
	}
	defer s.broadcaster.Shutdown()
	s.sched.start()
	defer s.sched.stop()

	s.Trigger() // the first scan is a full one
	var retry <-chan time.Time
	for {
		full := false
		select {
		case <-ctx.Done():
			return nil
		case <-s.trigger:
			full = true
		case <-s.sched.wake:
		case <-retry:
		}
		// A trigger that came with a schedule makes this scan a full one.
		select {
		case <-s.trigger:
			full = true
		default:
		}
		retry = nil
		if !s.scanOnce(ctx, full) {
			// The first scan with an engine is a full one (its schedules
			// are new), whatever woke it.
			retry = time.After(noEngineRetry)
		}
	}
}

// start starts the informers and the event sink and waits for the caches.
func (s *Scanner) start(ctx context.Context) error {
	for _, f := range s.factories {
		f.Start(ctx.Done())
	}
	s.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.opts.Kube.CoreV1().Events("")})
	syncCtx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), s.synced...) {
		s.broadcaster.Shutdown()
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("scanner: informer caches not synced within %s: can it list and watch pods, namespaces and networkpolicies?", syncTimeout)
	}
	s.ready.Store(true)
	return nil
}

// scanOnce runs the scan that is due and reports whether an engine was
// active. A full scan covers every namespace; otherwise the namespaces
// whose schedules fired.
func (s *Scanner) scanOnce(ctx context.Context, full bool) bool {
	eng := s.opts.Engines.Engine()
	if eng == nil {
		s.log.Debug("no bundle active, scan deferred")
		return false
	}
	if s.sched.update(eng.Schedules()) {
		// New schedules come with a new bundle, which is scanned in full.
		full = true
		specs := s.sched.specs()
		slices.Sort(specs)
		s.log.Info("scan schedules set", keyRevision, eng.Revision(), keySchedule, specs)
	}
	due := s.sched.take()
	if !full && len(due) == 0 {
		return true
	}
	inScope := func(string) bool { return true }
	if !full {
		inScope = func(ns string) bool { return due[s.sched.scheduleOf(ns)] }
	}
	if _, err := s.scan(ctx, eng, full, inScope); err != nil && ctx.Err() == nil {
		s.log.Error("scan failed", keyRevision, eng.Revision(), keyError, err.Error())
	}
	return true
}

// Result says what one scan did.
type Result struct {
	Revision   string
	Full       bool // every namespace was in scope
	Namespaces int  // namespaces with evaluated pods
	Evaluated  int  // pods evaluated, failures included
	Violations int
	Errors     int      // failed evaluations and actions
	Isolated   []string // pods labelled isolated by this scan, namespace/name
	Released   []string // pods whose isolation this scan removed
	Terminated []string // pods this scan deleted
	HeldBack   []string // terminations held back by the budget
}

// scan evaluates the pods in scope, acts, writes the reports and records
// the metrics. Scans are serialised by Run.
func (s *Scanner) scan(ctx context.Context, eng *bundles.Engine, full bool, inScope func(string) bool) (*Result, error) {
	start := time.Now()
	ev, err := s.evaluate(ctx, eng, s.opts.Now(), full, inScope)
	if err != nil {
		s.metrics.errors.WithLabelValues(OpEvaluate).Inc()
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	res := s.act(ctx, ev)
	s.reports.sync(ctx, ev, s.hasPods)
	res.Errors += s.reports.takeErrors()
	elapsed := time.Since(start)
	s.metrics.duration.Observe(elapsed.Seconds())
	scope := "scheduled"
	if full {
		scope = "full"
	}
	s.log.Info("scan finished", keyRevision, res.Revision, keyScope, scope, keyEvaluated, res.Evaluated,
		keyViolations, res.Violations, keyIsolated, len(res.Isolated), keyReleased, len(res.Released),
		keyTerminated, len(res.Terminated), keyHeldBack, len(res.HeldBack), keyErrors, res.Errors, keyDuration, elapsed.Seconds())
	return res, nil
}

// hasPods reports whether a namespace has a pod the scanner would
// evaluate, from the cache.
func (s *Scanner) hasPods(namespace string) bool {
	pods, err := s.pods.Pods(namespace).List(labels.Everything())
	if err != nil {
		return true // keep what cannot be checked
	}
	for _, p := range pods {
		if !s.skip(p) {
			return true
		}
	}
	return false
}
