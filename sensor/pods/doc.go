// Package pods attributes containers on this node to their pods: it turns
// a container id (read from a cgroup path by the sensor) into the selector
// facts of bundles.Container, and tells the sensor when a container of
// this node starts or goes, so that it watches exactly the cgroups of pod
// containers.
//
// One client-go shared informer lists and watches the pods whose
// spec.nodeName is this node (a field selector: the API server sends no
// other pod, which keeps a node's memory and traffic independent of the
// cluster's size). Each pod's status.containerStatuses,
// initContainerStatuses and ephemeralContainerStatuses are indexed by
// container id, without the runtime's scheme ("containerd://",
// "cri-o://", "docker://"), because a cgroup path names the bare id.
//
// Each container's facts name its workload ("Deployment/web": the pod's
// top controller, derived from the pod's controller owner reference and
// pod-template-hash label alone, see Workload; CronJobs by a documented
// heuristic on their Jobs' names) and its container name in the pod spec,
// from the container status it was matched by.
//
// Invariants: a container id that no pod of this node names has no facts,
// so Lookup reports false for host processes and for containers started
// outside Kubernetes, and a sensor that acts only on Lookup's facts never
// blocks them. Facts are immutable once published: Lookup hands out a
// shared pointer on the hot path, and an update replaces it.
//
// Lifecycle: New only builds; Run starts the informer, waits (bounded) for
// its first list, and stops it when its context is done. OnContainer
// callbacks run one at a time, in the order the informer delivered the pod
// changes, and a callback registered late first receives a ContainerStarted
// for every container already running.
package pods
