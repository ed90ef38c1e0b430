package pods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/palisade-dev/palisade/bundles"
)

// syncTimeout bounds Run's wait for the first list of this node's pods:
// a node has at most a few hundred, so what has not synced by then lacks
// permission to list and watch pods, or cannot reach the API server.
const syncTimeout = 60 * time.Second

// Log keys.
const (
	logKeyContainer = "container"
	logKeyNode      = "node"
	logKeyError     = "error"
)

// ErrRan is returned by Run when called a second time: an informer that
// has stopped does not start again.
var ErrRan = errors.New("pods: attributor already ran")

// Options configures an Attributor.
type Options struct {
	// Client lists and watches pods; it needs get, list and watch on pods.
	Client kubernetes.Interface
	// NodeName is this node's name (the downward API's spec.nodeName):
	// only pods scheduled here are watched.
	NodeName string
	// ClusterID and ClusterName become every container's cluster facts.
	ClusterID, ClusterName string
	// Logger receives errors (nil: discarded).
	Logger *slog.Logger
	// Registerer receives the metrics (nil: no metrics).
	Registerer prometheus.Registerer
	// CgroupRoot is the cgroup v2 mount CgroupIDFor searches; empty means
	// the one mounted (sensor.Cgroup2Mount). Tests point it elsewhere.
	CgroupRoot string
}

// EventType says whether a container came or went.
type EventType int

const (
	// ContainerStarted: a container of this node has a container id and
	// is not terminated; its cgroup exists (or is about to).
	ContainerStarted EventType = iota + 1
	// ContainerGone: the container terminated, was replaced by a restart,
	// or its pod was deleted; its cgroup is gone or going.
	ContainerGone
)

func (t EventType) String() string {
	switch t {
	case ContainerStarted:
		return "started"
	case ContainerGone:
		return "gone"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// ContainerEvent tells the sensor about one container of this node.
type ContainerEvent struct {
	Type EventType
	// ContainerID is the bare container id (no runtime scheme), as a
	// cgroup path names it; Runtime is the scheme ("containerd", "cri-o",
	// "docker").
	ContainerID, Runtime string
	// ContainerName is the container's name in the pod spec.
	ContainerName string
	// PodUID, Namespace and PodName name the pod.
	PodUID         types.UID
	Namespace, Pod string
	// ImageDigest is the digest of the image that runs (from the status's
	// imageID), empty when unknown. bundles.Container has no digest: no
	// runtime selector uses one.
	ImageDigest string
	// Facts are the container's selector facts, as Lookup returns them.
	// They are shared: do not modify them.
	Facts *bundles.Container
}

// Attributor maps container ids of this node to their pods' facts. Its
// methods are safe for concurrent use.
type Attributor struct {
	opts     Options
	log      *slog.Logger
	metrics  *podMetrics
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
	handler  cache.ResourceEventHandlerRegistration
	ran      atomic.Bool

	// dispatch serialises index changes with their callbacks, so that
	// callbacks see events in the informer's order and a late OnContainer
	// replays a consistent set. It is taken before mu.
	dispatch  sync.Mutex
	callbacks []func(ContainerEvent)

	mu    sync.RWMutex
	byID  map[string]*entry      // bare container id → entry
	byPod map[types.UID][]string // pod uid → its indexed container ids
}

// entry is one indexed container; it is replaced, never modified.
type entry struct {
	ev   ContainerEvent // Type unset
	live bool           // started and not terminated
}

// New returns an Attributor for the pods of opts.NodeName. It starts
// nothing: Run does.
func New(opts Options) *Attributor {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Attributor{
		opts:    opts,
		log:     log,
		metrics: newMetrics(opts.Registerer, log),
		byID:    map[string]*entry{},
		byPod:   map[types.UID][]string{},
	}
	// The field selector makes the API server send only this node's
	// pods; the informer's store holds nothing else.
	a.factory = informers.NewSharedInformerFactoryWithOptions(opts.Client, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", opts.NodeName).String()
		}),
		informers.WithTransform(stripPod))
	a.informer = a.factory.Core().V1().Pods().Informer()
	// Registration on a fresh informer cannot fail. Its HasSynced, not
	// the informer's, says the handler has indexed the first list.
	a.handler, _ = a.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.update(obj) },
		UpdateFunc: func(_, obj any) { a.update(obj) },
		DeleteFunc: a.delete,
	})
	return a
}

// stripPod drops what attribution never reads from the cached pods
// (managed fields, annotations: last-applied configurations are large).
func stripPod(obj any) (any, error) {
	if p, ok := obj.(*corev1.Pod); ok {
		p.ManagedFields = nil
		p.Annotations = nil
	}
	return obj, nil
}

// Run starts the informer, waits until it has listed this node's pods,
// and returns nil when ctx is done, after stopping it. It returns an
// error when the pods cannot be listed within a minute, and ErrRan
// when called again.
func (a *Attributor) Run(ctx context.Context) error {
	if !a.ran.CompareAndSwap(false, true) {
		return ErrRan
	}
	ctx, cancel := context.WithCancel(ctx)
	defer a.factory.Shutdown()
	defer cancel()
	a.factory.Start(ctx.Done())
	syncCtx, syncCancel := context.WithTimeout(ctx, syncTimeout)
	defer syncCancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), a.handler.HasSynced) {
		if ctx.Err() != nil {
			return nil
		}
		a.log.Error("pods not listed", logKeyNode, a.opts.NodeName)
		return fmt.Errorf("pods: pods of node %q not listed within %s: can the sensor list and watch pods?", a.opts.NodeName, syncTimeout)
	}
	<-ctx.Done()
	return nil
}

// HasSynced reports whether the first list of this node's pods is
// indexed (and its callbacks called). Until then Lookup misses
// containers that are running.
func (a *Attributor) HasSynced() bool { return a.handler.HasSynced() }

// Lookup returns the selector facts of the container with this id (bare
// or with its runtime scheme). It reports false for an id no pod of this
// node names: a host process, a container outside Kubernetes, or one not
// yet in its pod's status. The facts are shared: do not modify them.
func (a *Attributor) Lookup(containerID string) (*bundles.Container, bool) {
	id := StripRuntime(containerID)
	a.mu.RLock()
	e, ok := a.byID[id]
	a.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return e.ev.Facts, true
}

// OnContainer registers f to be told when a container of this node
// starts or goes. Calls are serial and in the informer's order; f runs on
// the informer's goroutine and should not block for long, nor call
// OnContainer (it would wait for itself); Lookup and CgroupIDFor are
// fine. f is first called with ContainerStarted for every container
// already running.
func (a *Attributor) OnContainer(f func(ContainerEvent)) {
	a.dispatch.Lock()
	defer a.dispatch.Unlock()
	a.mu.RLock()
	var replay []ContainerEvent
	for _, e := range a.byID {
		if e.live {
			ev := e.ev
			ev.Type = ContainerStarted
			replay = append(replay, ev)
		}
	}
	a.mu.RUnlock()
	for _, ev := range replay {
		f(ev)
	}
	a.callbacks = append(a.callbacks, f)
}

// StripRuntime returns a container id without its runtime scheme
// ("containerd://", "cri-o://", "docker://", or any other "<scheme>://").
func StripRuntime(containerID string) string {
	_, id := splitRuntime(containerID)
	return id
}

func splitRuntime(containerID string) (runtime, id string) {
	if r, id, ok := strings.Cut(containerID, "://"); ok {
		return r, id
	}
	return "", containerID
}

func (a *Attributor) update(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	// The field selector already filters; this guards against a client
	// that ignores it (a fake clientset does), which must never make
	// another node's containers ours.
	if pod.Spec.NodeName != a.opts.NodeName {
		a.delete(pod)
		return
	}
	a.apply(pod.UID, a.entries(pod))
}

func (a *Attributor) delete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		a.apply(pod.UID, nil)
	}
}

// apply replaces a pod's indexed containers with next and tells the
// callbacks what started and what went.
func (a *Attributor) apply(uid types.UID, next map[string]*entry) {
	a.dispatch.Lock()
	defer a.dispatch.Unlock()
	var events []ContainerEvent
	a.mu.Lock()
	for _, id := range a.byPod[uid] {
		old, ok := a.byID[id]
		// An id another pod took over since (a status naming a reused
		// id) is that pod's to remove.
		if !ok || old.ev.PodUID != uid {
			continue
		}
		if _, kept := next[id]; !kept {
			delete(a.byID, id)
			if old.live {
				events = append(events, withType(old.ev, ContainerGone))
			}
		}
	}
	ids := make([]string, 0, len(next))
	for id, e := range next {
		old, existed := a.byID[id]
		switch {
		case e.live && (!existed || !old.live):
			events = append(events, withType(e.ev, ContainerStarted))
		case !e.live && existed && old.live:
			events = append(events, withType(e.ev, ContainerGone))
		}
		a.byID[id] = e
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		delete(a.byPod, uid)
	} else {
		a.byPod[uid] = ids
	}
	n := len(a.byID)
	a.mu.Unlock()

	a.metrics.containers.Set(float64(n))
	for _, ev := range events {
		a.metrics.events.WithLabelValues(ev.Type.String()).Inc()
		for _, f := range a.callbacks {
			f(ev)
		}
	}
}

func withType(ev ContainerEvent, t EventType) ContainerEvent {
	ev.Type = t
	return ev
}

// entries returns the pod's containers that have a container id, keyed by
// the bare id, with their facts.
func (a *Attributor) entries(pod *corev1.Pod) map[string]*entry {
	specImages := map[string]string{}
	for _, c := range pod.Spec.InitContainers {
		specImages[c.Name] = c.Image
	}
	for _, c := range pod.Spec.Containers {
		specImages[c.Name] = c.Image
	}
	for _, c := range pod.Spec.EphemeralContainers {
		specImages[c.Name] = c.Image
	}
	// Labels are shared by the pod's containers' facts; the map is
	// copied so that the informer's object stays the informer's.
	var labels map[string]string
	if len(pod.Labels) > 0 {
		labels = make(map[string]string, len(pod.Labels))
		for k, v := range pod.Labels {
			labels[k] = v
		}
	}
	workload := Workload(pod)
	out := map[string]*entry{}
	for _, list := range [][]corev1.ContainerStatus{
		pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses,
	} {
		for _, st := range list {
			runtime, id := splitRuntime(st.ContainerID)
			if id == "" {
				continue // not created yet
			}
			img := imageFacts(specImages[st.Name], st.Image, st.ImageID)
			out[id] = &entry{
				// Waiting with an id is a crash loop's last container,
				// which has exited; only a running (or state-less)
				// container has a cgroup to watch.
				live: st.State.Terminated == nil && st.State.Waiting == nil,
				ev: ContainerEvent{
					ContainerID: id, Runtime: runtime, ContainerName: st.Name,
					PodUID: pod.UID, Namespace: pod.Namespace, Pod: pod.Name,
					ImageDigest: img.digest,
					Facts: &bundles.Container{
						ImageFullName: img.fullName, ImageName: img.name, ImageTag: img.tag,
						Namespace: pod.Namespace, PodName: pod.Name, PodLabels: labels,
						ClusterID: a.opts.ClusterID, ClusterName: a.opts.ClusterName,
						Workload: workload, ContainerName: st.Name,
					},
				},
			}
		}
	}
	return out
}
