package learning

import (
	"time"

	"github.com/palisade-dev/palisade/bundles"
)

// Kinds of observed behaviour: the RuntimeRuleset section it belongs to,
// as the sensor's events name it.
const (
	KindProcess = bundles.EventProcess
	KindFile    = bundles.EventFile
)

// WorkloadID is whose behaviour a profile holds: a container of a
// workload, not a pod, so that every replica (and every restart) adds to
// one profile.
type WorkloadID struct {
	Namespace string `json:"namespace"`
	// Workload is "<Kind>/<name>" of the pod's top controller, e.g.
	// "Deployment/web" ("Pod/<name>" for a bare pod).
	Workload  string `json:"workload"`
	Container string `json:"container"`
	// Image is the image repository (registry/repository, no tag);
	// Digest is the image's digest when the runtime reported one.
	Image  string `json:"image"`
	Digest string `json:"digest,omitempty"`
}

// Key identifies one behaviour of a workload: an executable run (process,
// exec) or a file operation on a path.
type Key struct {
	Kind      string `json:"kind"`      // KindProcess or KindFile
	Operation string `json:"operation"` // exec, fork, createFile, modifyFile, deleteFile, createExecutable, modifyExecutable
	// Path is the file operated on, or the executable for process events.
	Path string `json:"path"`
	// ProcessName is the executable's name (process events).
	ProcessName string `json:"processName,omitempty"`
	Interactive bool   `json:"interactive,omitempty"`
}

// Evidence is what was seen of one behaviour: how often, when, and a few
// of the pods it was seen in (at most MaxSamplePods, sorted).
type Evidence struct {
	Count     uint64    `json:"count"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	Pods      []string  `json:"pods,omitempty"`
}

// MaxSamplePods bounds Evidence.Pods.
const MaxSamplePods = 3

// Observed is one behaviour of one workload in one learning ruleset,
// summarised over a batch's interval.
type Observed struct {
	Ruleset  string     `json:"ruleset"`
	Workload WorkloadID `json:"workload"`
	Key      Key        `json:"key"`
	Evidence Evidence   `json:"evidence"`
}

// Batch is what a sensor sends the controller. ID is unique per batch
// ("<node>/<boot-uuid>/<seq>"): the controller applies each ID once, so a
// batch resent after a lost acknowledgement counts once.
type Batch struct {
	ID           string     `json:"id"`
	Node         string     `json:"node"`
	Sent         time.Time  `json:"sent"`
	Observations []Observed `json:"observations"`
}

// Profile is the merged behaviour of every workload a learning ruleset
// observed.
type Profile struct {
	Ruleset   string                      `json:"ruleset"`
	Workloads map[string]*WorkloadProfile `json:"workloads"` // by WorkloadKey
	// LastNew is when behaviour not seen before last arrived: a profile
	// is stable when nothing new arrived for the quiet period.
	LastNew time.Time `json:"lastNew"`
}

// WorkloadProfile is one workload's behaviour.
type WorkloadProfile struct {
	ID        WorkloadID  `json:"id"`
	Behaviour []Behaviour `json:"behaviour"` // sorted by Key (Kind, Operation, Path, Interactive)
}

// Behaviour is one key with its merged evidence.
type Behaviour struct {
	Key      Key      `json:"key"`
	Evidence Evidence `json:"evidence"`
}

// WorkloadKey is the map key of a workload in Profile.Workloads:
// namespace, workload and container (the image is evidence, not identity:
// a new image version keeps its workload's profile).
func WorkloadKey(id WorkloadID) string {
	return id.Namespace + "/" + id.Workload + "/" + id.Container
}
