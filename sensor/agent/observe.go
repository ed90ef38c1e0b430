package agent

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/palisade-dev/palisade/bundles"
)

// Observation is one event a learning ruleset observed (the decision's
// observe): what the learning aggregator summarises into a profile.
type Observation struct {
	Time time.Time // when the kernel saw the operation
	Node string
	// Rulesets are the names of the learning-mode rulesets among the
	// decision's matches, sorted and unique; empty when the learning
	// ruleset observed without a response matching.
	Rulesets []string
	// Container is the container's selector facts, shared: do not
	// modify it.
	Container *bundles.Container
	// ContainerID is the bare container id, ContainerName its name in
	// the pod spec ("" when the container is not in the watch table).
	ContainerID, ContainerName string
	// Namespace and Pod name the pod (as Container does).
	Namespace, Pod string
	// ImageDigest is the digest of the image that runs (sha256:…, from
	// the pod status's imageID), "" when the status has none.
	ImageDigest string
	// Kind is the ruleset section the event belongs to (bundles.EventFile
	// or bundles.EventProcess).
	Kind string
	// Operation is the D4C operation (exec, fork, createFile, ...);
	// Path the file operated on, or the executable for exec and fork.
	Operation, Path string
	// ProcessExecutable is the acting process's executable (exec and
	// fork only: file events carry none); ProcessName its comm.
	ProcessExecutable, ProcessName string
	// Interactive: the session leader has a controlling terminal.
	Interactive bool
}

// Observer receives observations. Observe is called on the goroutine
// that consumes events, once per observed event, in event order: it must
// not block (hand work to another goroutine) and must not keep the
// Observation's Container beyond reading it unless it treats it as
// read-only.
type Observer interface {
	Observe(Observation)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Observation)

// Observe calls f.
func (f ObserverFunc) Observe(o Observation) { f(o) }

// Observers fans an observation out to several observers, in order.
type Observers []Observer

// Observe calls each observer.
func (os Observers) Observe(o Observation) {
	for _, ob := range os {
		ob.Observe(o)
	}
}

// ObservationLine is one line of the JSON-lines observation stream.
type ObservationLine struct {
	Time        time.Time `json:"time"`
	Node        string    `json:"node"`
	Namespace   string    `json:"namespace"`
	Pod         string    `json:"pod"`
	Container   string    `json:"container"`
	ContainerID string    `json:"containerId"`
	Image       string    `json:"image"`
	ImageDigest string    `json:"imageDigest,omitempty"`
	Operation   string    `json:"operation"`
	Path        string    `json:"path"`
	Process     string    `json:"process"`
	ProcessName string    `json:"processName"`
	Interactive bool      `json:"interactive"`
	Rulesets    []string  `json:"rulesets"`
	Stream      string    `json:"stream"` // always "observation"
}

// JSONLines is an Observer writing each observation as one
// ObservationLine to w (the --observations-file stream). Write errors are
// given to onError (nil: dropped).
func JSONLines(w io.Writer, onError func(error)) Observer {
	enc := &lockedEncoder{enc: json.NewEncoder(w)}
	return ObserverFunc(func(o Observation) {
		line := ObservationLine{Time: o.Time, Node: o.Node, Namespace: o.Namespace, Pod: o.Pod, Container: o.ContainerName,
			ContainerID: o.ContainerID, Image: imageOf(o.Container), ImageDigest: o.ImageDigest, Operation: o.Operation,
			Path: o.Path, Process: o.ProcessExecutable, ProcessName: o.ProcessName, Interactive: o.Interactive,
			Rulesets: o.Rulesets, Stream: "observation"}
		if line.Rulesets == nil {
			line.Rulesets = []string{}
		}
		if err := enc.write(line); err != nil && onError != nil {
			onError(err)
		}
	})
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

func imageOf(c *bundles.Container) string {
	if c == nil {
		return ""
	}
	if c.ImageTag == "" {
		return c.ImageFullName
	}
	return c.ImageFullName + ":" + c.ImageTag
}
