package bundles

import (
	"context"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/palisade-dev/palisade/policy"
)

// Entry points of the Rego library.
const (
	AdmissionQuery  = "data.palisade.admission.decision"
	ContinuousQuery = "data.palisade.continuous.decision"
)

// Engine evaluates decisions against one compiled bundle. It is immutable
// and safe for concurrent use.
type Engine struct {
	revision   string
	admission  rego.PreparedEvalQuery
	continuous rego.PreparedEvalQuery
}

// NewEngine compiles a bundle and prepares its entry points. A bundle that
// does not compile returns an error and must not be activated.
func NewEngine(ctx context.Context, b *bundle.Bundle) (*Engine, error) {
	e := &Engine{revision: b.Manifest.Revision}
	for query, dst := range map[string]*rego.PreparedEvalQuery{AdmissionQuery: &e.admission, ContinuousQuery: &e.continuous} {
		pq, err := rego.New(
			rego.Query(query),
			rego.ParsedBundle(Root, b),
			rego.StrictBuiltinErrors(true),
			// Keep data as AST values in the store: without this every query
			// converts the policy data again.
			rego.StoreReadAST(true),
		).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("compile bundle %s: %w", b.Manifest.Revision, err)
		}
		*dst = pq
	}
	return e, nil
}

// Revision is the revision (Git commit) of the engine's bundle.
func (e *Engine) Revision() string { return e.revision }

// Request is the part of an AdmissionReview request that decisions read.
// Object and OldObject are the decoded JSON objects.
type Request struct {
	UID         string           `json:"uid,omitempty"`
	Kind        GroupVersionKind `json:"kind"`
	Namespace   string           `json:"namespace,omitempty"`
	Name        string           `json:"name,omitempty"`
	Operation   string           `json:"operation"`
	SubResource string           `json:"subResource,omitempty"`
	UserInfo    UserInfo         `json:"userInfo"`
	Object      map[string]any   `json:"object,omitempty"`
	OldObject   map[string]any   `json:"oldObject,omitempty"`
}

// GroupVersionKind names the kind of a request's object.
type GroupVersionKind struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// UserInfo is who sent a request.
type UserInfo struct {
	Username string   `json:"username,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}

// Facts are what Go gathers for Rego: the evaluation time (Rego never
// reads the clock) and the namespace's labels.
type Facts struct {
	Now             time.Time
	NamespaceLabels map[string]string
}

func (f Facts) value(obj map[string]any) map[string]any {
	labels := make(map[string]any, len(f.NamespaceLabels))
	for k, v := range f.NamespaceLabels {
		labels[k] = v
	}
	v := map[string]any{"namespaceLabels": labels, "images": imageFacts(obj)}
	// Without a time, Rego sees no now and expiring exceptions fail closed.
	if !f.Now.IsZero() {
		v["now"] = f.Now.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// Violation is one rule a subject breaks.
type Violation struct {
	Rule       string   `json:"rule"`
	Action     string   `json:"action"`
	Field      string   `json:"field"`
	Value      string   `json:"value"`
	Message    string   `json:"message"`
	Containers []string `json:"containers"`
}

// Decision is the result of an entry point. Allowed and Warnings are set
// by admission decisions only.
type Decision struct {
	Revision   string      `json:"revision"`
	Allowed    bool        `json:"allowed"`
	Violations []Violation `json:"violations"`
	Warnings   []string    `json:"warnings"`
}

// Admission evaluates data.palisade.admission.decision for a request.
func (e *Engine) Admission(ctx context.Context, req *Request, facts Facts) (*Decision, error) {
	input := map[string]any{"request": requestValue(req), "facts": facts.value(req.Object)}
	return e.eval(ctx, e.admission, input)
}

// Continuous evaluates data.palisade.continuous.decision for a pod.
func (e *Engine) Continuous(ctx context.Context, pod map[string]any, facts Facts) (*Decision, error) {
	input := map[string]any{"object": pod, "facts": facts.value(pod)}
	return e.eval(ctx, e.continuous, input)
}

// imageFacts normalises every image reference in an object (the string
// values of "image" keys, wherever they are) with policy.ParseImage, so
// that Rego does not parse them (lib/images.info). A reference that does
// not parse is left out: Rego parses it and finds it invalid.
func imageFacts(obj map[string]any) map[string]any {
	out := map[string]any{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if ref, ok := child.(string); ok && k == "image" {
					if _, done := out[ref]; !done {
						if img, err := policy.ParseImage(ref); err == nil {
							out[ref] = map[string]any{
								"registry": img.Registry, "repository": img.Repository, "name": img.Name,
								"tag": img.Tag, "digest": img.Digest, "reference": img.Reference, "valid": true,
							}
						}
					}
					continue
				}
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(obj)
	return out
}

func requestValue(r *Request) map[string]any {
	groups := make([]any, len(r.UserInfo.Groups))
	for i, g := range r.UserInfo.Groups {
		groups[i] = g
	}
	v := map[string]any{
		"uid":         r.UID,
		"kind":        map[string]any{"group": r.Kind.Group, "version": r.Kind.Version, "kind": r.Kind.Kind},
		"namespace":   r.Namespace,
		"name":        r.Name,
		"operation":   r.Operation,
		"subResource": r.SubResource,
		"userInfo":    map[string]any{"username": r.UserInfo.Username, "groups": groups},
	}
	if r.Object != nil {
		v["object"] = r.Object
	}
	if r.OldObject != nil {
		v["oldObject"] = r.OldObject
	}
	return v
}

func (e *Engine) eval(ctx context.Context, pq rego.PreparedEvalQuery, input map[string]any) (*Decision, error) {
	value, err := ast.InterfaceToValue(input)
	if err != nil {
		return nil, fmt.Errorf("convert input: %w", err)
	}
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(value))
	if err != nil {
		return nil, fmt.Errorf("evaluate policy: %w", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, fmt.Errorf("evaluate policy: undefined decision")
	}
	out, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("evaluate policy: decision is %T, not an object", rs[0].Expressions[0].Value)
	}
	d := &Decision{Revision: e.revision, Violations: []Violation{}, Warnings: []string{}}
	d.Allowed, _ = out["allowed"].(bool)
	for _, w := range asSlice(out["warnings"]) {
		s, _ := w.(string)
		d.Warnings = append(d.Warnings, s)
	}
	for _, item := range asSlice(out["violations"]) {
		m, _ := item.(map[string]any)
		v := Violation{
			Rule: str(m["rule"]), Action: str(m["action"]), Field: str(m["field"]),
			Value: str(m["value"]), Message: str(m["message"]), Containers: []string{},
		}
		for _, c := range asSlice(m["containers"]) {
			v.Containers = append(v.Containers, str(c))
		}
		d.Violations = append(d.Violations, v)
	}
	return d, nil
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
