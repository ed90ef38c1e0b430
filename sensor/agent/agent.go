package agent

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/sensor"
	"github.com/palisade-dev/palisade/sensor/enforce"
	"github.com/palisade-dev/palisade/sensor/pods"
)

// Watcher selects the cgroups the kernel reports events of:
// *sensor.Probe.
type Watcher interface {
	Watch(cgroupID uint64) error
	Unwatch(cgroupID uint64) error
	// Drops returns the events the kernel dropped (ring buffer full).
	Drops() (uint64, error)
}

// Containers attributes container ids to pods: *pods.Attributor.
type Containers interface {
	// CgroupIDFor returns the cgroup v2 id of a running container.
	CgroupIDFor(containerID string) (uint64, bool)
	// Lookup returns a container's selector facts; false for a container
	// no pod of this node names (a host process's cgroup).
	Lookup(containerID string) (*bundles.Container, bool)
}

var (
	_ Watcher    = (*sensor.Probe)(nil)
	_ Containers = (*pods.Attributor)(nil)
)

// Options configures an Agent. Only NodeName is required; a nil seam
// turns its part off (unit tests run without a kernel).
type Options struct {
	// NodeName is this node's name, in every stream line and Event.
	NodeName string
	// Features are the blocking backends the kernel offers
	// (enforce.Probe()); LoadBackends loads those the agent drives.
	Features enforce.Features
	// Logger receives the agent's log (nil: discarded).
	Logger *slog.Logger
	// Registerer receives the palisade_sensor_* metrics (nil: none).
	Registerer prometheus.Registerer
	// Alerts receives the alert stream: one Line per match with the alert
	// action, JSON lines (nil: discarded).
	Alerts io.Writer
	// Events receives the event stream: one Line per match with the log
	// action, JSON lines (nil: logged at info by Logger).
	Events io.Writer
	// Observer is called for every event a learning ruleset observed
	// (nil: none). JSONLines(w) is the --observations-file observer.
	Observer Observer
	// Kube records a rate-limited Warning Event on the pod of each alert
	// (nil: no Events). Recorder, when set, is used instead (tests).
	Kube     kubernetes.Interface
	Recorder record.EventRecorder
	// Watcher is the kernel event source's cgroup filter (*sensor.Probe).
	Watcher Watcher
	// Containers attributes events to pods (*pods.Attributor).
	Containers Containers
	// ContainerRoot returns the root mount of a container from its
	// cgroup id, for fanotify marks (default: /proc/<pid>/root of a
	// process listed in the cgroup's cgroup.procs).
	ContainerRoot func(cgroupID uint64) (string, error)
	// Backends are blocking backends already loaded (tests give fakes);
	// LoadBackends fills in the real ones.
	Backends Backends
}

// Agent decides on the events of a node's containers and enforces the
// active bundle's runtime rulesets. Its methods are safe for concurrent
// use.
type Agent struct {
	opts        Options
	node        string
	log         *slog.Logger
	alerts      *lineWriter
	events      *lineWriter
	recorder    record.EventRecorder
	broadcaster record.EventBroadcaster
	attr        Containers
	watcher     Watcher
	root        func(uint64) (string, error)

	engine     atomic.Pointer[bundles.Engine]
	rules      atomic.Pointer[compiled]
	activation atomic.Uint64 // Activate calls: only the latest may store its rules

	// mu guards the tables and the backends' programming. The fanotify
	// decision takes it for reading: nothing done under it may open a
	// file on a container's mount.
	mu         sync.RWMutex
	backends   Backends
	loaded     []io.Closer         // backends LoadBackends loaded, closed by Close
	containers map[string]*watched // by bare container id
	byCgroup   map[uint64]string   // cgroup id → container id
	unenforced map[string]*Unenforced
	lastEvent  map[string]time.Time // pod uid/ruleset → last Kubernetes Event

	eventCount, alertCount, observations, unknownOps atomic.Uint64
	killed, fanDenied                                atomic.Uint64
	closeOnce                                        sync.Once

	m agentMetrics
}

// watched is a container the agent reports on, and what its backends
// were given.
type watched struct {
	id          string
	cgroupID    uint64
	podUID      string
	container   string
	imageDigest string
	facts       *bundles.Container

	execBlocks []string          // exact paths given to the exec killer
	lsm        bool              // rules given to the LSM
	fanWant    bool              // a fanotify-routed block applies
	fanOps     map[string]bool   // operations routed to fanotify; replaced, never modified
	fanRoot    string            // the marked root, "" until marked
	covered    map[string]string // operation → backend enforcing it here
}

// New returns an Agent. It loads nothing into the kernel: LoadBackends
// does.
func New(opts Options) *Agent {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{
		opts: opts, node: opts.NodeName, log: log,
		attr: opts.Containers, watcher: opts.Watcher, root: opts.ContainerRoot,
		backends:   opts.Backends,
		containers: map[string]*watched{}, byCgroup: map[uint64]string{},
		unenforced: map[string]*Unenforced{}, lastEvent: map[string]time.Time{},
	}
	if a.root == nil {
		a.root = containerRoot
	}
	w := opts.Alerts
	if w == nil {
		w = io.Discard
	}
	a.alerts = &lineWriter{w: w}
	if opts.Events != nil {
		a.events = &lineWriter{w: opts.Events}
	}
	a.recorder = opts.Recorder
	if a.recorder == nil && opts.Kube != nil {
		a.broadcaster = record.NewBroadcaster()
		a.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: opts.Kube.CoreV1().Events("")})
		a.recorder = a.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "palisade-sensor", Host: opts.NodeName})
	}
	a.m = newMetrics(a, opts.Registerer, log)
	return a
}

// Close releases the backends LoadBackends loaded, after which nothing is
// blocked, and stops recording pod Events. Safe to call more than once.
func (a *Agent) Close() error {
	var errs []error
	a.closeOnce.Do(func() {
		a.mu.Lock()
		loaded := a.loaded
		a.loaded = nil
		a.backends = Backends{}
		a.mu.Unlock()
		// Reverse order of loading.
		for i := len(loaded) - 1; i >= 0; i-- {
			if err := loaded[i].Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if a.broadcaster != nil {
			a.broadcaster.Shutdown()
		}
	})
	return joinErrs(errs)
}

// Activate makes e the engine events are decided with, and compiles its
// native matcher and reprograms the backends off the caller's goroutine
// (bundles.ClientOptions.OnActivate must not block). Until the matcher
// is compiled, e's Rego decides.
func (a *Agent) Activate(e *bundles.Engine) {
	a.engine.Store(e)
	gen := a.activation.Add(1)
	go func() {
		c, err := compileRules(e.Bundle())
		if err != nil {
			a.log.Error("native matcher not compiled: deciding with Rego", "revision", e.Revision(), "error", err)
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		// Activations compile concurrently: only the latest may replace
		// the rules in use.
		if a.activation.Load() != gen {
			return
		}
		a.rules.Store(c)
		a.log.Info("native matcher compiled", "revision", c.revision, "blockOperations", c.blockOps)
		// Status describes the active revision: blocks of the last one
		// that this one dropped are no longer unenforced.
		clear(a.unenforced)
		for rs, ops := range c.blocks {
			for _, op := range ops {
				if _, reason := a.routeOpLocked(op); reason != "" {
					a.noteUnenforcedLocked(rs, op, reason)
				}
			}
		}
		for _, w := range a.containers {
			a.programLocked(w, c)
		}
	}()
}

// Revision returns the active revision, "" before the first Activate.
func (a *Agent) Revision() string {
	if e := a.engine.Load(); e != nil {
		return e.Revision()
	}
	return ""
}

// OnContainer watches a container's cgroup when it starts, and programs
// the backends for it; it forgets the container when it goes, by the
// cgroup id remembered at start (the cgroup is gone). It is the
// pods.Attributor's OnContainer callback.
func (a *Agent) OnContainer(ev pods.ContainerEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch ev.Type {
	case pods.ContainerStarted:
		if _, ok := a.containers[ev.ContainerID]; ok || a.attr == nil {
			return
		}
		id, ok := a.attr.CgroupIDFor(ev.ContainerID)
		if !ok {
			a.log.Debug("container cgroup not found", "container", ev.ContainerID)
			return
		}
		if a.watcher != nil {
			if err := a.watcher.Watch(id); err != nil {
				a.log.Error("watch container", "container", ev.ContainerID, "error", err)
				return
			}
		}
		w := &watched{id: ev.ContainerID, cgroupID: id, podUID: string(ev.PodUID), container: ev.ContainerName,
			imageDigest: ev.ImageDigest, facts: ev.Facts}
		a.containers[ev.ContainerID] = w
		a.byCgroup[id] = ev.ContainerID
		a.programLocked(w, a.rules.Load())
	case pods.ContainerGone:
		w, ok := a.containers[ev.ContainerID]
		if !ok {
			return
		}
		a.unprogramLocked(w, true)
		if a.watcher != nil {
			if err := a.watcher.Unwatch(w.cgroupID); err != nil {
				a.log.Error("unwatch container", "container", ev.ContainerID, "error", err)
			}
		}
		delete(a.containers, ev.ContainerID)
		delete(a.byCgroup, w.cgroupID)
		// The pod's Event rate limits go with it (kept while another
		// container of the pod runs: one more Event at worst).
		for k := range a.lastEvent {
			if strings.HasPrefix(k, w.podUID+"/") {
				delete(a.lastEvent, k)
			}
		}
	}
}

// Consume decides on each event until the channel closes.
func (a *Agent) Consume(events <-chan sensor.Event) {
	for ev := range events {
		a.Handle(&ev)
	}
}

// ConsumeBatches decides on each event of each batch, in order, until the
// channel closes: Consume for *sensor.Probe.Batches, the sensor's fast
// path (a channel operation per batch, not per event).
func (a *Agent) ConsumeBatches(batches <-chan []sensor.Event) {
	for b := range batches {
		for i := range b {
			a.Handle(&b[i])
		}
	}
}

// matchSample is how often Handle times a decision for
// palisade_sensor_match_seconds: one event in matchSample. Two clock
// reads and a histogram update per event would cost more than a tenth
// of the event's handling; a sample shows the same distribution.
const matchSample = 16

// Line is one line of the alert stream and of the event (log) stream.
type Line struct {
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
	Stream    string    `json:"stream"` // alert or event
}

// Handle decides on one event and acts on the decision: Consume's body,
// for callers with their own loop.
func (a *Agent) Handle(ev *sensor.Event) {
	op := ev.Op.String()
	n := a.eventCount.Add(1)
	a.m.countEvent(ev.Op, op)
	re, known := runtimeEvent(ev)
	if !known {
		if a.unknownOps.Add(1) == 1 {
			a.log.Warn("operation unknown to the agent: counted, not decided on", "operation", op)
		}
		return
	}
	id, w, unmarked := a.containerOf(ev.CgroupID)
	if id == "" || a.attr == nil {
		return
	}
	facts, ok := a.attr.Lookup(id)
	if !ok {
		return // not a pod's container: never acted on
	}
	if unmarked {
		a.retryMark(w)
	}
	d := decisions.Get().(*bundles.RuntimeDecision)
	defer decisions.Put(d)
	var err error
	if n%matchSample == 0 {
		start := time.Now()
		err = a.decide(d, &re, facts)
		a.m.match.Observe(time.Since(start).Seconds())
	} else {
		err = a.decide(d, &re, facts)
	}
	if err != nil {
		a.log.Error("decide on event", "error", err)
		return
	}
	container := ""
	if w != nil {
		container = w.container
	}
	for _, m := range d.Matches {
		line := Line{Time: ev.Time, Node: a.node, Namespace: facts.Namespace, Pod: facts.PodName, Container: container,
			Image: imageOf(facts), Operation: op, Path: ev.Path, Process: re.ProcessExecutable, Ruleset: m.Ruleset, Actions: m.Actions}
		if slices.Contains(m.Actions, "log") {
			if a.events != nil {
				line.Stream = "event"
				if err := a.events.write(&line); err != nil {
					a.log.Error("write event", "error", err)
				}
			} else {
				a.log.Info("runtime event", "namespace", line.Namespace, "pod", line.Pod, "operation", op, "path", ev.Path, "ruleset", m.Ruleset)
			}
		}
		if slices.Contains(m.Actions, "alert") {
			line.Stream = "alert"
			a.alertCount.Add(1)
			a.m.alerts.Inc()
			if err := a.alerts.write(&line); err != nil {
				a.log.Error("write alert", "error", err)
			}
			if w != nil {
				a.podEvent(w, facts, m.Ruleset, op, ev.Path)
			}
		}
		if slices.Contains(m.Actions, "block") {
			a.noteBlock(w, m.Ruleset, op, ev.Path)
		}
	}
	if d.Observe {
		a.observations.Add(1)
		if a.opts.Observer != nil {
			a.opts.Observer.Observe(a.observation(ev, &re, d, id, w, facts))
		}
	}
}

func (a *Agent) observation(ev *sensor.Event, re *bundles.RuntimeEvent, d *bundles.RuntimeDecision, id string, w *watched, facts *bundles.Container) Observation {
	o := Observation{Time: ev.Time, Node: a.node, Container: facts, ContainerID: id, Namespace: facts.Namespace, Pod: facts.PodName,
		Kind: re.Kind, Operation: re.Operation, Path: re.Path, ProcessExecutable: re.ProcessExecutable, ProcessName: re.ProcessName, Interactive: re.Interactive}
	if w != nil {
		o.ContainerName, o.ImageDigest = w.container, w.imageDigest
	}
	for _, m := range d.Matches {
		if m.Mode == "learning" && !slices.Contains(o.Rulesets, m.Ruleset) {
			o.Rulesets = append(o.Rulesets, m.Ruleset)
		}
	}
	slices.Sort(o.Rulesets)
	return o
}

// containerOf returns the container an event's cgroup belongs to: from
// the watch table, else from the cgroup's path; unmarked says the
// container wants a fanotify mark it could not get yet.
func (a *Agent) containerOf(cgroupID uint64) (id string, w *watched, unmarked bool) {
	a.mu.RLock()
	id, ok := a.byCgroup[cgroupID]
	w = a.containers[id]
	unmarked = w != nil && w.fanWant && w.fanRoot == ""
	a.mu.RUnlock()
	if ok {
		return id, w, unmarked
	}
	root, err := sensor.Cgroup2Mount()
	if err != nil {
		return "", nil, false
	}
	p, err := sensor.CgroupPath(root, cgroupID)
	if err != nil {
		return "", nil, false
	}
	ref, ok := sensor.ParseCgroupPath(p)
	if !ok {
		return "", nil, false
	}
	return ref.ID, nil, false
}

// podEvent records an Event on the pod, at most one per pod and ruleset a
// minute: an alert storm must not become an API server storm.
func (a *Agent) podEvent(w *watched, facts *bundles.Container, ruleset, op, p string) {
	if a.recorder == nil {
		return
	}
	k := w.podUID + "/" + ruleset
	now := time.Now()
	a.mu.Lock()
	last, seen := a.lastEvent[k]
	if seen && now.Sub(last) < time.Minute {
		a.mu.Unlock()
		return
	}
	a.lastEvent[k] = now
	a.mu.Unlock()
	ref := &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: facts.Namespace, Name: facts.PodName, UID: types.UID(w.podUID)}
	a.recorder.Eventf(ref, corev1.EventTypeWarning, "RuntimeAlert", "ruleset %s: %s %s in container %s", ruleset, op, p, w.container)
}

// decide asks the native matcher of the active revision, else its Rego.
func (a *Agent) decide(d *bundles.RuntimeDecision, ev *bundles.RuntimeEvent, c *bundles.Container) error {
	e := a.engine.Load()
	if r := a.rules.Load(); r != nil && (e == nil || r.revision == e.Revision()) {
		r.matcher.MatchInto(d, ev, c)
		return nil
	}
	*d = bundles.RuntimeDecision{}
	if e == nil {
		return nil
	}
	rd, err := e.Runtime(context.Background(), ev, c)
	if err != nil {
		return err
	}
	*d = *rd
	return nil
}

// decisions holds the decisions Handle writes into: the matcher reuses
// a decision's array of matches (match.Matcher.MatchInto), so an event
// that many rules match allocates nothing once one has. Handle keeps
// nothing of a decision after it returns.
var decisions = sync.Pool{New: func() any { return new(bundles.RuntimeDecision) }}

// runtimeEvent turns a kernel event into the matcher's input; false for
// an operation the agent does not know. The process name is the thread's
// comm: after an exec, the name the program was run by (sh for /bin/sh,
// where Path reads /bin/busybox), cut at 15 bytes. File events carry no
// executable: the kernel event has none yet.
func runtimeEvent(ev *sensor.Event) (bundles.RuntimeEvent, bool) {
	re := bundles.RuntimeEvent{Operation: ev.Op.String(), Path: ev.Path, ProcessName: ev.Comm, Interactive: ev.Interactive}
	switch ev.Op {
	case sensor.OpExec, sensor.OpFork:
		re.Kind = bundles.EventProcess
		re.ProcessExecutable = ev.Path
	case sensor.OpCreateFile, sensor.OpModifyFile, sensor.OpDeleteFile, sensor.OpCreateExecutable, sensor.OpModifyExecutable:
		re.Kind = bundles.EventFile
	default:
		return re, false
	}
	return re, true
}
