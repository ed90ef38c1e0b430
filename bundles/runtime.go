package bundles

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// RuntimeQuery is the node sensor's entry point: the decision on one
// file or process event inside a container.
const RuntimeQuery = "data.palisade.runtime.decision"

// Event kinds: the section of a RuntimeRuleset whose rules apply.
const (
	EventFile    = "file"
	EventProcess = "process"
)

// RuntimeEvent is a file or process operation inside a container, as the
// sensor sees it (input.event in Rego).
type RuntimeEvent struct {
	Kind      string `json:"kind"`      // EventFile or EventProcess
	Operation string `json:"operation"` // exec, fork, createExecutable, modifyExecutable, createFile, modifyFile, deleteFile
	// Path is the file operated on, or the executable of a process event,
	// as the container sees it.
	Path string `json:"path"`
	// ProcessExecutable and ProcessName are the acting process (for exec,
	// the program after the exec).
	ProcessExecutable string `json:"processExecutable"`
	ProcessName       string `json:"processName"`
	// Interactive: the session leader has a controlling terminal.
	Interactive bool `json:"interactive"`
	// OnVolume: Path is on a volume mount; OnVolumeFile: Path is itself a
	// file mount (a ConfigMap or Secret subPath), which is also a volume.
	OnVolume     bool `json:"onVolume"`
	OnVolumeFile bool `json:"onVolumeFile"`
}

// Container is what the sensor knows of the container an event happened
// in: the selector facts (input.facts.container in Rego).
type Container struct {
	ImageFullName string            `json:"imageFullName"` // registry/repository
	ImageName     string            `json:"imageName"`     // repository
	ImageTag      string            `json:"imageTag"`
	Namespace     string            `json:"namespace"`
	PodName       string            `json:"podName"`
	PodLabels     map[string]string `json:"podLabels"`
	ClusterID     string            `json:"clusterId"`
	ClusterName   string            `json:"clusterName"`
	// Workload is "<Kind>/<name>" of the pod's top controller
	// ("Deployment/web", "CronJob/nightly", "Pod/<name>" for a bare pod),
	// as sensor/pods derives it from the pod's owner reference.
	Workload string `json:"workload"`
	// ContainerName is the container's name in the pod spec.
	ContainerName string `json:"containerName"`
}

// RuntimeMatch is one response of a ruleset that matched an event.
type RuntimeMatch struct {
	Ruleset  string `json:"ruleset"`
	Response int    `json:"response"` // index in the event's section
	Mode     string `json:"mode"`     // the ruleset's effective mode
	// Actions are the response's actions after the mode, sorted.
	Actions []string `json:"actions"`
	// Selectors are the names in the response's match list that held,
	// sorted.
	Selectors []string `json:"selectors"`
}

// RuntimeDecision is the decision on one event: the union of the matches'
// actions (sorted), the matches sorted by ruleset and response, and
// whether a learning ruleset observed the event.
type RuntimeDecision struct {
	Actions []string       `json:"actions"`
	Matches []RuntimeMatch `json:"matches"`
	Observe bool           `json:"observe"`
}

// Runtime evaluates data.palisade.runtime.decision for an event in a
// container; a nil container is a host process, which no rule matches.
func (e *Engine) Runtime(ctx context.Context, ev *RuntimeEvent, c *Container) (*RuntimeDecision, error) {
	t, err := e.topdown(ctx, e.runtime, RuntimeInput(ev, c))
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("evaluate %s: undefined decision", RuntimeQuery)
	}
	out, _ := t.Value.(ast.Object)
	if out == nil {
		return nil, fmt.Errorf("evaluate %s: decision is not an object", RuntimeQuery)
	}
	d := &RuntimeDecision{Actions: strs(field(out, "actions"))}
	if b, ok := field(out, "observe").(ast.Boolean); ok {
		d.Observe = bool(b)
	}
	each(field(out, "matches"), func(item ast.Value) {
		m, _ := item.(ast.Object)
		rm := RuntimeMatch{
			Ruleset:   str(field(m, "ruleset")),
			Mode:      str(field(m, "mode")),
			Actions:   strs(field(m, "actions")),
			Selectors: strs(field(m, "selectors")),
		}
		if n, ok := field(m, "response").(ast.Number); ok {
			i, _ := n.Int()
			rm.Response = i
		}
		d.Matches = append(d.Matches, rm)
	})
	// Rego returns matches as a set, in its own order of objects: order
	// them as the native matcher does, by ruleset then response.
	slices.SortFunc(d.Matches, func(a, b RuntimeMatch) int {
		if c := strings.Compare(a.Ruleset, b.Ruleset); c != 0 {
			return c
		}
		return a.Response - b.Response
	})
	return d, nil
}

// RuntimeInput returns the input Runtime evaluates, for benchmarks and
// other evaluators (a plain OPA).
func RuntimeInput(ev *RuntimeEvent, c *Container) ast.Value {
	event := ast.NewObject(
		ast.Item(ast.InternedTerm("kind"), ast.StringTerm(ev.Kind)),
		ast.Item(ast.InternedTerm("operation"), ast.StringTerm(ev.Operation)),
		ast.Item(ast.InternedTerm("path"), ast.StringTerm(ev.Path)),
		ast.Item(ast.InternedTerm("processExecutable"), ast.StringTerm(ev.ProcessExecutable)),
		ast.Item(ast.InternedTerm("processName"), ast.StringTerm(ev.ProcessName)),
		ast.Item(ast.InternedTerm("interactive"), ast.InternedTerm(ev.Interactive)),
		ast.Item(ast.InternedTerm("onVolume"), ast.InternedTerm(ev.OnVolume)),
		ast.Item(ast.InternedTerm("onVolumeFile"), ast.InternedTerm(ev.OnVolumeFile)),
	)
	facts := ast.NewObject()
	if c != nil {
		labels := ast.NewObjectWithCapacity(len(c.PodLabels))
		for k, v := range c.PodLabels {
			labels.Insert(ast.StringTerm(k), ast.StringTerm(v))
		}
		facts.Insert(ast.InternedTerm("container"), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("imageFullName"), ast.StringTerm(c.ImageFullName)),
			ast.Item(ast.InternedTerm("imageName"), ast.StringTerm(c.ImageName)),
			ast.Item(ast.InternedTerm("imageTag"), ast.StringTerm(c.ImageTag)),
			ast.Item(ast.InternedTerm("namespace"), ast.StringTerm(c.Namespace)),
			ast.Item(ast.InternedTerm("podName"), ast.StringTerm(c.PodName)),
			ast.Item(ast.InternedTerm("podLabels"), ast.NewTerm(labels)),
			ast.Item(ast.InternedTerm("clusterId"), ast.StringTerm(c.ClusterID)),
			ast.Item(ast.InternedTerm("clusterName"), ast.StringTerm(c.ClusterName)),
			ast.Item(ast.InternedTerm("workload"), ast.StringTerm(c.Workload)),
			ast.Item(ast.InternedTerm("containerName"), ast.StringTerm(c.ContainerName)),
		))
	}
	return ast.NewObject(
		ast.Item(ast.InternedTerm("event"), ast.NewTerm(event)),
		ast.Item(ast.InternedTerm("facts"), ast.NewTerm(facts)),
	)
}

// strs returns the strings of an array or set (nil when empty).
func strs(v ast.Value) []string {
	var out []string
	each(v, func(s ast.Value) { out = append(out, str(s)) })
	return out
}
