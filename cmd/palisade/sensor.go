package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/internal/metrics"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/sensor"
	"github.com/palisade-dev/palisade/sensor/enforce"
	"github.com/palisade-dev/palisade/sensor/match"
	"github.com/palisade-dev/palisade/sensor/pods"
)

type sensorFlags struct {
	bundle                 bundleFlags
	nodeName, kubeconfig   string
	clusterID, clusterName string
	listen, alertsFile     string
	observationsFile       string
	logLevel               string
}

func sensorCmd() *cobra.Command {
	var f sensorFlags
	cmd := &cobra.Command{
		Use:   "sensor --bundle-url URL",
		Short: "Watch and enforce the runtime rulesets inside this node's containers (eBPF)",
		Long: `Load the eBPF sensor, watch the containers of this node's pods (an
informer on spec.nodeName), decide on each file and process event with the
RuntimeRulesets of the bundle the client fetches (--bundle-url), and act:
log → the event stream (the log, at info), alert → the alert stream
(--alerts-file, JSON lines) and a rate-limited Event on the pod, block → the
kernel backend this node has for the operation; a block the node cannot
enforce is reported on /status, never ignored. Learning rulesets write
observations (--observations-file). Needs CAP_BPF, CAP_PERFMON and
CAP_SYS_ADMIN, the host pid namespace and the host's cgroup v2 mount.

  GET  /status    features, backends per operation, counts, unenforced blocks
  GET  /metrics   Prometheus metrics
  GET  /healthz   liveness
  GET  /readyz    ready once a bundle is active and the pods are listed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runSensor(ctx, cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	f.bundle.register(fl)
	fl.StringVar(&f.nodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME, the downward API's spec.nodeName)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig (default: in-cluster, else $KUBECONFIG)")
	fl.StringVar(&f.clusterID, "cluster-id", "", "kubernetesClusterId selector fact of every container")
	fl.StringVar(&f.clusterName, "cluster-name", "", "kubernetesClusterName selector fact of every container")
	fl.StringVar(&f.listen, "listen", ":8080", "address of /status, /metrics, /healthz and /readyz (plain HTTP)")
	fl.StringVar(&f.alertsFile, "alerts-file", "", "file the alert stream is appended to, JSON lines (default: stdout)")
	fl.StringVar(&f.observationsFile, "observations-file", "", "file learning-mode observations are appended to, JSON lines (default: stdout)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	_ = cmd.MarkFlagRequired("bundle-url")
	return cmd
}

// runSensor wires the sensor's pieces and runs them until ctx is done,
// then detaches them in reverse order. Tests call it in-process.
func runSensor(ctx context.Context, stdout io.Writer, f sensorFlags) (err error) {
	log, err := newLogger(os.Stderr, f.logLevel)
	if err != nil {
		return err
	}
	if f.nodeName == "" {
		return errors.New("--node-name (or $NODE_NAME) is required: the sensor watches this node's pods only")
	}
	alerts, closeAlerts, err := openStream(f.alertsFile, stdout)
	if err != nil {
		return fmt.Errorf("--alerts-file: %w", err)
	}
	defer closeAlerts()
	observations, closeObs, err := openStream(f.observationsFile, stdout)
	if err != nil {
		return fmt.Errorf("--observations-file: %w", err)
	}
	defer closeObs()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	features := enforce.Probe()
	ns := newNodeSensor(f.nodeName, features, log, reg, alerts, observations)
	log.Info("sensor can block", "node", f.nodeName, "backends", ns.backendSummary())

	cfg, err := loadRESTConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	ns.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "palisade-sensor", Host: f.nodeName})

	copts, err := f.bundle.clientOptions(log, reg)
	if err != nil {
		return err
	}
	copts.OnActivate = func(e *bundles.Engine) { ns.activate(e) }
	client, err := bundles.NewClient(copts)
	if err != nil {
		return err
	}
	ns.client = client

	// Detach in reverse order of attaching: stop blocking first, then stop
	// watching, so that nothing stays blocked without a sensor deciding.
	probe, err := sensor.Load(sensor.Options{})
	if err != nil {
		return fmt.Errorf("load sensor: %w", err)
	}
	// consume ends when Close closes the event stream; waiting for it
	// keeps the streams open until the last event is written.
	done := make(chan struct{})
	defer func() { err = errors.Join(err, probe.Close()); <-done }()
	ns.probe = probe
	if !features.BPFLSM && features.ExecKill {
		k, kerr := enforce.LoadExecKiller()
		if kerr != nil {
			log.Error("exec killer not loaded: exec blocks stay unenforced", "error", kerr)
		} else {
			defer func() { err = errors.Join(err, k.Close()) }()
			ns.killer = k
		}
	}

	attr := pods.New(pods.Options{Client: kube, NodeName: f.nodeName, ClusterID: f.clusterID, ClusterName: f.clusterName, Logger: log, Registerer: reg})
	ns.attr, ns.lookup = attr, attr.Lookup
	attr.OnContainer(ns.onContainer)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", ns.serveStatus)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !client.Ready() || !attr.HasSynced() {
			http.Error(w, "no bundle active or pods not listed", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "palisade sensor: node %s, bundles from %s, status http://%s/status\n", f.nodeName, f.bundle.url, ln.Addr())

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	go func() { errc <- client.Run(runCtx) }()
	go func() { errc <- attr.Run(runCtx) }()
	go serve(errc, srv, ln)
	go func() { defer close(done); ns.consume(probe.Events()) }()
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	shutdownCtx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	return errors.Join(err, srv.Shutdown(shutdownCtx))
}

// openStream opens a JSON-lines stream: name appended to, or w when
// name is empty.
func openStream(name string, w io.Writer) (*lockedEncoder, func(), error) {
	if name == "" {
		return &lockedEncoder{enc: json.NewEncoder(w)}, func() {}, nil
	}
	fh, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, nil, err
	}
	return &lockedEncoder{enc: json.NewEncoder(fh)}, func() { _ = fh.Close() }, nil
}

// lockedEncoder writes whole JSON lines from several goroutines.
type lockedEncoder struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (l *lockedEncoder) write(v any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.enc.Encode(v)
}

// compiled is the native matcher of one revision and the exec paths its
// block rules name exactly (what the exec killer can be given).
type compiled struct {
	revision  string
	matcher   *match.Matcher
	execPaths []string
	blockOps  []string // operations some enforce-mode response blocks
	// blocks names, per ruleset, the operations its responses block, so
	// that /status names the ruleset a node cannot enforce.
	blocks map[string][]string
}

// compileRules compiles a bundle's runtime rulesets.
func compileRules(b *bundle.Bundle) (*compiled, error) {
	m, err := match.FromBundle(b)
	if err != nil {
		return nil, err
	}
	c := &compiled{revision: b.Manifest.Revision, matcher: m}
	root, _ := b.Data[bundles.Root].(map[string]any)
	raw, err := json.Marshal(root["policy"])
	if err != nil {
		return nil, err
	}
	var d bundles.ClusterData
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	ops := map[string]bool{}
	paths := map[string]bool{}
	c.blocks = map[string][]string{}
	for name, rs := range d.Rulesets {
		rsOps := map[string]bool{}
		if rs.Mode != "" && rs.Mode != policy.ModeEnforce {
			continue
		}
		for _, sec := range []*policy.D4CSection{rs.File, rs.Process} {
			if sec == nil {
				continue
			}
			byName := map[string]policy.Selector{}
			for _, s := range sec.Selectors {
				byName[s.Name] = s
			}
			for _, r := range sec.Responses {
				if !slices.Contains(r.Actions, "block") {
					continue
				}
				for _, name := range r.Match {
					s := byName[name]
					selOps := s.Operation
					if len(selOps) == 0 && sec == rs.Process {
						selOps = []string{enforce.OpExec, enforce.OpFork}
					}
					for _, op := range selOps {
						ops[op] = true
						rsOps[op] = true
					}
					if slices.Contains(selOps, enforce.OpExec) {
						for _, p := range s.ProcessExecutable {
							if !strings.Contains(p, "*") {
								paths[p] = true
							}
						}
					}
				}
			}
		}
		if len(rsOps) > 0 {
			c.blocks[name] = sortedKeys(rsOps)
		}
	}
	c.blockOps = sortedKeys(ops)
	c.execPaths = sortedKeys(paths)
	return c, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// watched is a container the sensor reports on.
type watched struct {
	cgroupID   uint64
	podUID     string
	container  string
	facts      *bundles.Container
	execBlocks []string // paths given to the exec killer for this cgroup
}

// unenforced is a block response this node does not enforce.
type unenforced struct {
	Ruleset   string `json:"ruleset"`
	Operation string `json:"operation"`
	Reason    string `json:"reason"`
	Count     uint64 `json:"count"`
}

// execKiller is the part of enforce.ExecKiller the sensor uses.
type execKiller interface {
	Block(cgroupID uint64, path string) error
	Unblock(cgroupID uint64, path string) error
}

// nodeSensor holds the sensor's state between the kernel, the informer
// and the bundle client. The kernel-facing parts are nil in unit tests.
type nodeSensor struct {
	node     string
	features enforce.Features
	log      *slog.Logger
	alerts   *lockedEncoder
	observe  *lockedEncoder
	recorder record.EventRecorder

	probe *sensor.Probe
	attr  *pods.Attributor
	// lookup is attr.Lookup: the seam where unit tests give facts.
	lookup func(containerID string) (*bundles.Container, bool)
	client *bundles.Client
	killer execKiller

	rules atomic.Pointer[compiled]

	mu         sync.Mutex
	containers map[string]*watched // by bare container id
	byCgroup   map[uint64]string   // cgroup id → container id
	unenforced map[string]*unenforced
	lastEvent  map[string]time.Time // pod uid/ruleset → last Kubernetes Event

	events, alertCount, blocks, observations atomic.Uint64

	mEvents  *prometheus.CounterVec
	mDrops   prometheus.CounterFunc
	mAlerts  prometheus.Counter
	mMatch   prometheus.Histogram
	mBlocked *prometheus.CounterVec
}

func newNodeSensor(node string, features enforce.Features, log *slog.Logger, reg prometheus.Registerer, alerts, observe *lockedEncoder) *nodeSensor {
	ns := &nodeSensor{
		node: node, features: features, log: log, alerts: alerts, observe: observe,
		containers: map[string]*watched{}, byCgroup: map[uint64]string{},
		unenforced: map[string]*unenforced{}, lastEvent: map[string]time.Time{},
	}
	ns.mEvents = metrics.Register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "palisade_sensor_events_total", Help: "Events from watched containers, by operation.",
	}, []string{"operation"}))
	ns.mDrops = metrics.Register(reg, log, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "palisade_sensor_drops_total", Help: "Events the kernel dropped because the ring buffer was full.",
	}, func() float64 { return float64(ns.drops()) }))
	ns.mAlerts = metrics.Register(reg, log, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "palisade_sensor_alerts_total", Help: "Events that matched an alert response.",
	}))
	ns.mMatch = metrics.Register(reg, log, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "palisade_sensor_match_seconds", Help: "Time to decide on one event.",
		Buckets: prometheus.ExponentialBuckets(1e-7, 4, 10),
	}))
	ns.mBlocked = metrics.Register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "palisade_sensor_blocked_total", Help: "Operations blocked, by backend.",
	}, []string{"backend"}))
	return ns
}

func (ns *nodeSensor) drops() uint64 {
	if ns.probe == nil {
		return 0
	}
	n, _ := ns.probe.Drops()
	return n
}

// operations are the D4C operations, in the order status lists them.
var operations = []string{enforce.OpExec, enforce.OpFork, enforce.OpCreateExecutable, enforce.OpModifyExecutable,
	enforce.OpCreateFile, enforce.OpModifyFile, enforce.OpDeleteFile}

// wiredBackend says which backend this command drives for op: the
// kernel may offer more than is wired here yet.
func (ns *nodeSensor) wiredBackend(op string) (string, string) {
	b, ok := ns.features.CanBlock(op)
	if !ok {
		_, err := ns.features.Backend(op)
		return "", err.Error()
	}
	if op == enforce.OpExec && !ns.features.BPFLSM && ns.features.ExecKill {
		return enforce.BackendExecKill, ""
	}
	return "", fmt.Sprintf("the kernel offers %s, which palisade sensor does not drive yet", b)
}

// backendSummary names, per operation, the backend that blocks it here.
func (ns *nodeSensor) backendSummary() map[string]string {
	out := map[string]string{}
	for _, op := range operations {
		if b, reason := ns.wiredBackend(op); b != "" {
			out[op] = b
		} else {
			out[op] = "cannot block on this node: " + reason
		}
	}
	return out
}

// activate compiles the native matcher of a new revision, from the
// bundle the client verified and activated, and reprograms the exec
// killer; off the client's goroutine, which OnActivate must not hold.
// Until it succeeds, events are decided by the engine.
func (ns *nodeSensor) activate(e *bundles.Engine) {
	go func() {
		c, err := compileRules(e.Bundle())
		if err != nil {
			ns.log.Error("native matcher not compiled: deciding with Rego", "revision", e.Revision(), "error", err)
			return
		}
		ns.mu.Lock()
		defer ns.mu.Unlock()
		// Activations compile concurrently: only the active revision's
		// matcher may replace the one in use.
		if ns.client != nil && ns.client.Revision() != c.revision {
			return
		}
		ns.rules.Store(c)
		ns.log.Info("native matcher compiled", "revision", c.revision, "blockOperations", c.blockOps)
		// /status describes the active revision: blocks of the last one
		// that this one dropped are no longer unenforced.
		clear(ns.unenforced)
		for rs, ops := range c.blocks {
			for _, op := range ops {
				if b, reason := ns.wiredBackend(op); b == "" {
					ns.noteUnenforcedLocked(rs, op, reason)
				}
			}
		}
		for id, w := range ns.containers {
			ns.programLocked(id, w, c)
		}
	}()
}

// programLocked gives the exec killer the exact exec paths this
// container's policy blocks. It asks the matcher with a synthetic exec,
// so the container's facts (namespace, image, labels) decide as they do
// for a real event; a rule that also needs an interactive session is not
// programmed (the kernel side cannot see it) and is reported.
func (ns *nodeSensor) programLocked(id string, w *watched, c *compiled) {
	if ns.killer == nil || c == nil {
		return
	}
	for _, p := range w.execBlocks {
		_ = ns.killer.Unblock(w.cgroupID, p)
	}
	w.execBlocks = nil
	for _, p := range c.execPaths {
		ev := bundles.RuntimeEvent{Kind: bundles.EventProcess, Operation: enforce.OpExec, Path: p, ProcessExecutable: p, ProcessName: path.Base(p)}
		d := c.matcher.Match(&ev, w.facts)
		if !slices.Contains(d.Actions, "block") {
			continue
		}
		if err := ns.killer.Block(w.cgroupID, p); err != nil {
			ns.noteUnenforcedLocked("*", enforce.OpExec, err.Error())
			continue
		}
		w.execBlocks = append(w.execBlocks, p)
		ns.log.Info("exec blocked", "container", id, "pod", w.facts.Namespace+"/"+w.facts.PodName, "path", p)
	}
}

func (ns *nodeSensor) noteUnenforcedLocked(ruleset, op, reason string) *unenforced {
	k := ruleset + "\x00" + op
	u := ns.unenforced[k]
	if u == nil {
		u = &unenforced{Ruleset: ruleset, Operation: op, Reason: reason}
		ns.unenforced[k] = u
		ns.log.Warn("block not enforced on this node", "ruleset", ruleset, "operation", op, "reason", reason)
	}
	return u
}

// onContainer watches a container's cgroup when it starts and forgets it
// when it goes, by the cgroup id remembered at start (the cgroup is gone).
func (ns *nodeSensor) onContainer(ev pods.ContainerEvent) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	switch ev.Type {
	case pods.ContainerStarted:
		if _, ok := ns.containers[ev.ContainerID]; ok {
			return
		}
		id, ok := ns.attr.CgroupIDFor(ev.ContainerID)
		if !ok {
			ns.log.Debug("container cgroup not found", "container", ev.ContainerID)
			return
		}
		if err := ns.probe.Watch(id); err != nil {
			ns.log.Error("watch container", "container", ev.ContainerID, "error", err)
			return
		}
		w := &watched{cgroupID: id, podUID: string(ev.PodUID), container: ev.ContainerName, facts: ev.Facts}
		ns.containers[ev.ContainerID] = w
		ns.byCgroup[id] = ev.ContainerID
		ns.programLocked(ev.ContainerID, w, ns.rules.Load())
	case pods.ContainerGone:
		w, ok := ns.containers[ev.ContainerID]
		if !ok {
			return
		}
		if ns.killer != nil {
			for _, p := range w.execBlocks {
				_ = ns.killer.Unblock(w.cgroupID, p)
			}
		}
		if err := ns.probe.Unwatch(w.cgroupID); err != nil {
			ns.log.Error("unwatch container", "container", ev.ContainerID, "error", err)
		}
		delete(ns.containers, ev.ContainerID)
		delete(ns.byCgroup, w.cgroupID)
		// The pod's Event rate limits go with it (kept while another
		// container of the pod runs: one more Event at worst).
		for k := range ns.lastEvent {
			if strings.HasPrefix(k, w.podUID+"/") {
				delete(ns.lastEvent, k)
			}
		}
	}
}

// consume decides on each event until the stream closes.
func (ns *nodeSensor) consume(events <-chan sensor.Event) {
	for ev := range events {
		ns.handle(&ev)
	}
}

// containerOf returns the container an event's cgroup belongs to: from
// the watch table, else from the cgroup's path.
func (ns *nodeSensor) containerOf(cgroupID uint64) (string, *watched) {
	ns.mu.Lock()
	id, ok := ns.byCgroup[cgroupID]
	w := ns.containers[id]
	ns.mu.Unlock()
	if ok {
		return id, w
	}
	root, err := sensor.Cgroup2Mount()
	if err != nil {
		return "", nil
	}
	p, err := sensor.CgroupPath(root, cgroupID)
	if err != nil {
		return "", nil
	}
	ref, ok := sensor.ParseCgroupPath(p)
	if !ok {
		return "", nil
	}
	return ref.ID, nil
}

// alertLine is one line of the alert stream.
type alertLine struct {
	Time      time.Time `json:"time"`
	Node      string    `json:"node"`
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	Container string    `json:"container"`
	Image     string    `json:"image"`
	Operation string    `json:"operation"`
	Path      string    `json:"path"`
	Process   string    `json:"process"`
	Ruleset   string    `json:"ruleset"`
	Actions   []string  `json:"actions"`
	Stream    string    `json:"stream"` // alert or observation
}

func (ns *nodeSensor) handle(ev *sensor.Event) {
	op := ev.Op.String()
	ns.events.Add(1)
	ns.mEvents.WithLabelValues(op).Inc()
	id, w := ns.containerOf(ev.CgroupID)
	if id == "" || ns.lookup == nil {
		return
	}
	facts, ok := ns.lookup(id)
	if !ok {
		return // not a pod's container: never acted on
	}
	re := runtimeEvent(ev)
	start := time.Now()
	d, err := ns.decide(&re, facts)
	ns.mMatch.Observe(time.Since(start).Seconds())
	if err != nil {
		ns.log.Error("decide on event", "error", err)
		return
	}
	container := ""
	if w != nil {
		container = w.container
	}
	for _, m := range d.Matches {
		line := alertLine{Time: ev.Time, Node: ns.node, Namespace: facts.Namespace, Pod: facts.PodName, Container: container,
			Image: imageOf(facts), Operation: op, Path: ev.Path, Process: re.ProcessExecutable, Ruleset: m.Ruleset, Actions: m.Actions}
		if slices.Contains(m.Actions, "log") {
			ns.log.Info("runtime event", "namespace", line.Namespace, "pod", line.Pod, "operation", op, "path", ev.Path, "ruleset", m.Ruleset)
		}
		if slices.Contains(m.Actions, "alert") {
			line.Stream = "alert"
			ns.alertCount.Add(1)
			ns.mAlerts.Inc()
			if err := ns.alerts.write(line); err != nil {
				ns.log.Error("write alert", "error", err)
			}
			if w != nil {
				ns.podEvent(w, facts, m.Ruleset, op, ev.Path)
			}
		}
		if slices.Contains(m.Actions, "block") {
			ns.noteBlock(w, m.Ruleset, op, ev.Path)
		}
	}
	if d.Observe {
		ns.observations.Add(1)
		line := alertLine{Time: ev.Time, Node: ns.node, Namespace: facts.Namespace, Pod: facts.PodName, Container: container,
			Image: imageOf(facts), Operation: op, Path: ev.Path, Process: re.ProcessExecutable, Stream: "observation"}
		if err := ns.observe.write(line); err != nil {
			ns.log.Error("write observation", "error", err)
		}
	}
}

// noteBlock accounts for a block response on an event the kernel
// reported: the exec killer kills after the event, so an exec it holds is
// counted as blocked; anything else was not blocked and is reported.
func (ns *nodeSensor) noteBlock(w *watched, ruleset, op, p string) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if op == enforce.OpExec && w != nil && slices.Contains(w.execBlocks, p) {
		ns.blocks.Add(1)
		ns.mBlocked.WithLabelValues(enforce.BackendExecKill).Inc()
		return
	}
	reason := "not wired: only exact exec paths are blocked (exec killer)"
	if b, r := ns.wiredBackend(op); b == "" {
		reason = r
	}
	ns.noteUnenforcedLocked(ruleset, op, reason).Count++
}

// podEvent records an Event on the pod, at most one per pod and ruleset a
// minute: an alert storm must not become an API server storm.
func (ns *nodeSensor) podEvent(w *watched, facts *bundles.Container, ruleset, op, p string) {
	if ns.recorder == nil {
		return
	}
	k := w.podUID + "/" + ruleset
	now := time.Now()
	ns.mu.Lock()
	last, seen := ns.lastEvent[k]
	if seen && now.Sub(last) < time.Minute {
		ns.mu.Unlock()
		return
	}
	ns.lastEvent[k] = now
	ns.mu.Unlock()
	ref := &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: facts.Namespace, Name: facts.PodName, UID: types.UID(w.podUID)}
	ns.recorder.Eventf(ref, corev1.EventTypeWarning, "RuntimeAlert", "ruleset %s: %s %s in container %s", ruleset, op, p, w.container)
}

func (ns *nodeSensor) decide(ev *bundles.RuntimeEvent, c *bundles.Container) (bundles.RuntimeDecision, error) {
	var e *bundles.Engine
	if ns.client != nil {
		e = ns.client.Engine()
	}
	if r := ns.rules.Load(); r != nil && (e == nil || r.revision == e.Revision()) {
		return r.matcher.Match(ev, c), nil
	}
	if e == nil {
		return bundles.RuntimeDecision{}, nil
	}
	d, err := e.Runtime(context.Background(), ev, c)
	if err != nil {
		return bundles.RuntimeDecision{}, err
	}
	return *d, nil
}

// runtimeEvent turns a kernel event into the matcher's input. The
// process name is the thread's comm: after an exec, the name the program
// was run by (sh for /bin/sh, where Path reads /bin/busybox), cut at 15
// bytes. File events carry no executable: the kernel event has none yet.
func runtimeEvent(ev *sensor.Event) bundles.RuntimeEvent {
	re := bundles.RuntimeEvent{Operation: ev.Op.String(), Path: ev.Path, ProcessName: ev.Comm, Interactive: ev.Interactive}
	switch ev.Op {
	case sensor.OpExec, sensor.OpFork:
		re.Kind = bundles.EventProcess
		re.ProcessExecutable = ev.Path
	default:
		re.Kind = bundles.EventFile
	}
	return re
}

func imageOf(c *bundles.Container) string {
	if c.ImageTag == "" {
		return c.ImageFullName
	}
	return c.ImageFullName + ":" + c.ImageTag
}

// sensorStatus is the /status document.
type sensorStatus struct {
	Node       string            `json:"node"`
	Features   enforce.Features  `json:"features"`
	Backends   map[string]string `json:"backends"`
	Revision   string            `json:"revision"`
	Matcher    string            `json:"matcher"` // native (revision) or rego
	Watched    int               `json:"watchedContainers"`
	Events     uint64            `json:"events"`
	Drops      uint64            `json:"drops"`
	Alerts     uint64            `json:"alerts"`
	Blocks     uint64            `json:"blocks"`
	Observed   uint64            `json:"observations"`
	Unenforced []unenforced      `json:"unenforcedBlocks"`
	Wiring     map[string]string `json:"wiring"`
}

func (ns *nodeSensor) status() sensorStatus {
	s := sensorStatus{
		Node: ns.node, Features: ns.features, Backends: ns.backendSummary(), Matcher: "rego",
		Events: ns.events.Load(), Drops: ns.drops(), Alerts: ns.alertCount.Load(), Blocks: ns.blocks.Load(),
		Observed: ns.observations.Load(), Unenforced: []unenforced{},
		Wiring: map[string]string{
			enforce.BackendExecKill: "exec rules whose processExecutable is an exact path, per container cgroup, when the node has no BPF LSM",
			enforce.BackendFanotify: "not wired: open and exec permission decisions are not yet driven by palisade sensor",
			enforce.BackendLSM:      "not wired: no BPF LSM programs yet",
		},
	}
	if ns.client != nil {
		s.Revision = ns.client.Revision()
	}
	if r := ns.rules.Load(); r != nil && r.revision == s.Revision {
		s.Matcher = "native"
	}
	ns.mu.Lock()
	s.Watched = len(ns.containers)
	for _, u := range ns.unenforced {
		s.Unenforced = append(s.Unenforced, *u)
	}
	ns.mu.Unlock()
	sort.Slice(s.Unenforced, func(i, j int) bool {
		a, b := s.Unenforced[i], s.Unenforced[j]
		return a.Ruleset+a.Operation < b.Ruleset+b.Operation
	})
	return s
}

func (ns *nodeSensor) serveStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(ns.status())
}
