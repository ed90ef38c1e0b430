package bundles

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/palisade-dev/palisade/policy"
)

// Entry points of the Rego library.
const (
	AdmissionQuery  = "data.palisade.admission.decision"
	ContinuousQuery = "data.palisade.continuous.decision"
	// WantedQuery is what the verification rules ask Go to gather for
	// a subject: image reference → attestor names.
	WantedQuery = "data.palisade.rules.verification.wanted"
)

// Engine evaluates decisions against one compiled bundle. It is immutable
// (but for a cache of parsed image references) and safe for concurrent
// use.
//
// A decision's input is built as AST values (rego.EvalParsedInput) and its
// result read as AST values: the evaluation is most of the cost of a
// decision, and converting through map[string]any was another tenth.
type Engine struct {
	revision   string
	bundle     *bundle.Bundle
	schedules  Schedules
	attestors  map[string]policy.AttestorSpec
	verifies   bool   // the bundle has verification rules
	wanted     *entry // WantedQuery, when verifies
	admission  *entry
	continuous *entry
	runtime    *entry // RuntimeQuery (runtime.go), always topdown
	images     imageCache

	mode    string   // the evaluator (evaluator.go)
	ir      *planned // the IR program, unless mode is topdown
	planErr error    // why the bundle could not be planned

	// The topdown queries (entry.pq), which Runtime always uses. When
	// the plan decides everything else they are dropped once the bundle
	// is known to compile, and prepared again on first use (topdown):
	// queries is set then, and nil when they are prepared with the engine.
	queries     map[string]*rego.PreparedEvalQuery
	prepareOnce sync.Once
	prepareErr  error
}

// NewEngine compiles a bundle and prepares its entry points. A bundle that
// does not compile returns an error and must not be activated.
func NewEngine(ctx context.Context, b *bundle.Bundle) (*Engine, error) {
	facts, err := readBundleFacts(b.Data)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", b.Manifest.Revision, err)
	}
	mode, err := evaluatorMode()
	if err != nil {
		return nil, err
	}
	e := &Engine{revision: b.Manifest.Revision, bundle: b, schedules: facts.schedules(), attestors: facts.Attestors, mode: mode}
	e.admission, e.continuous, e.runtime = newEntry(AdmissionQuery), newEntry(ContinuousQuery), newEntry(RuntimeQuery)
	entries := []*entry{e.admission, e.continuous}
	queries := map[string]*rego.PreparedEvalQuery{AdmissionQuery: &e.admission.pq, ContinuousQuery: &e.continuous.pq, RuntimeQuery: &e.runtime.pq}
	if facts.verifies() {
		e.verifies = true
		e.wanted = newEntry(WantedQuery)
		entries = append(entries, e.wanted)
		queries[WantedQuery] = &e.wanted.pq
	}
	// Planning takes about as long as preparing the topdown queries: both
	// run at once (each compiler works on its own copy of the modules).
	type planResult struct {
		ir  *planned
		err error
	}
	planned := make(chan planResult, 1)
	if mode != EvaluatorTopdown {
		go func() {
			ir, err := plan(ctx, b, entries)
			planned <- planResult{ir, err}
		}()
	}
	if err := prepareTopdown(ctx, b, queries); err != nil {
		return nil, fmt.Errorf("compile bundle %s: %w", b.Manifest.Revision, err)
	}
	if mode != EvaluatorTopdown {
		// A bundle that compiles but cannot be planned is decided by
		// topdown: slower, never different.
		r := <-planned
		if e.ir, e.planErr = r.ir, r.err; e.planErr != nil {
			if mode == EvaluatorCheck {
				return nil, fmt.Errorf("bundle %s: %w", b.Manifest.Revision, e.planErr)
			}
			e.mode = EvaluatorTopdown
		}
	}
	if e.mode == EvaluatorIR {
		// The plan decides admission, continuous and verification, and
		// topdown only the runtime entry point, which serving processes
		// other than the sensor never ask. Its compiled modules and store
		// would be marked by every collection (1.4 MB of the 4.3 MB of
		// scannable heap that bundle and engine of policies-example prod
		// kept): they go, and are prepared again on first use.
		e.queries = queries
		for _, pq := range queries {
			*pq = rego.PreparedEvalQuery{}
		}
		// So do the modules' syntax trees (1.1 MB more): only topdown
		// reads them, and it parses them again from their source.
		e.bundle = withoutSyntaxTrees(b)
	}
	return e, nil
}

// withoutSyntaxTrees is a copy of b whose modules keep their source but
// not their parsed syntax trees.
func withoutSyntaxTrees(b *bundle.Bundle) *bundle.Bundle {
	cp := *b
	cp.Modules = slices.Clone(b.Modules)
	for i := range cp.Modules {
		cp.Modules[i].Parsed = nil
	}
	return &cp
}

// withSyntaxTrees is a copy of b with every module that lacks its syntax
// tree parsed again from its source, as OPA's bundle reader parses it
// (the Rego version of the manifest or of the file).
func withSyntaxTrees(b *bundle.Bundle) (*bundle.Bundle, error) {
	cp := *b
	cp.Modules = slices.Clone(b.Modules)
	for i, m := range cp.Modules {
		if m.Parsed != nil {
			continue
		}
		version, err := b.RegoVersionForFile(m.RelativePath, b.RegoVersion(ast.DefaultRegoVersion))
		if err != nil {
			return nil, err
		}
		if cp.Modules[i].Parsed, err = ast.ParseModuleWithOpts(m.Path, string(m.Raw), ast.ParserOptions{RegoVersion: version}); err != nil {
			return nil, err
		}
	}
	return &cp, nil
}

// prepareTopdown compiles the bundle once and prepares every query on that
// compiler and its data store. Preparing each query from the bundle
// (rego.ParsedBundle) would compile the bundle once per query, and the
// engine would keep every copy: 3-4 compilers, 8 MB of pointer-dense AST
// for the prod example bundle that every collection of a serving process
// scans.
func prepareTopdown(ctx context.Context, b *bundle.Bundle, queries map[string]*rego.PreparedEvalQuery) error {
	// As rego.New makes its own compiler and store for a bundle: data is
	// kept as AST values (converted once, not on every read).
	compiler := ast.NewCompiler().WithUseTypeCheckAnnotations(true)
	store := inmem.NewWithOpts(inmem.OptReturnASTValuesOnRead(true))
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return err
	}
	if err := bundle.Activate(&bundle.ActivateOpts{
		Ctx: ctx, Store: store, Txn: txn, Metrics: metrics.New(),
		// A rule and data at the same path are an error, as rego.New has it.
		Compiler: compiler.WithPathConflictsCheck(storage.NonEmpty(ctx, store, txn)),
		Bundles:  map[string]*bundle.Bundle{Root: b},
	}); err != nil {
		store.Abort(ctx, txn)
		return err
	}
	if err := store.Commit(ctx, txn); err != nil {
		return err
	}
	for query, dst := range queries {
		pq, err := rego.New(
			rego.Query(query),
			rego.Compiler(compiler),
			rego.Store(store),
			rego.StrictBuiltinErrors(true),
			// Hand the decision over as an AST term: eval reads it directly
			// instead of through a map[string]any.
			rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }),
		).PrepareForEval(ctx)
		if err != nil {
			return err
		}
		*dst = pq
	}
	return nil
}

// Revision is the revision (Git commit) of the engine's bundle.
func (e *Engine) Revision() string { return e.revision }

// Bundle is the bundle the engine was compiled from, for consumers that
// compile it further (the sensor's native matcher): they see exactly
// what the client verified and activated, but that in IR mode its
// modules carry their source only (Parsed is nil). It is shared: do not
// modify.
func (e *Engine) Bundle() *bundle.Bundle { return e.bundle }

// Schedules says when the continuous rules are re-checked: the
// cluster-wide definition's schedule, and that of each namespace listed
// in a namespaced definition (which takes precedence, as for the rules).
// Schedules are cron expressions or @every durations, validated by the
// policy package; an empty ClusterWide means policy.DefaultSchedule.
type Schedules struct {
	ClusterWide string
	Namespaces  map[string]string
}

// For returns the schedule of a namespace.
func (s Schedules) For(namespace string) string {
	if sched, ok := s.Namespaces[namespace]; ok {
		return sched
	}
	if s.ClusterWide == "" {
		return policy.DefaultSchedule
	}
	return s.ClusterWide
}

// Schedules returns the continuous schedules of the engine's bundle.
func (e *Engine) Schedules() Schedules { return e.schedules }

// bundleFacts is what the engine reads from a bundle's data.json
// without evaluating: the continuous schedules, whether any verification
// rule exists, and the attestors.
type bundleFacts struct {
	ClusterWide definitionFacts `json:"clusterWide"`
	Namespaced  []struct {
		Namespaces []string `json:"namespaces"`
		definitionFacts
	} `json:"namespaced"`
	Attestors map[string]policy.AttestorSpec `json:"attestors"`
}

type definitionFacts struct {
	Deployment verificationFacts `json:"deployment"`
	Continuous struct {
		Schedule string            `json:"schedule"`
		Rules    verificationFacts `json:"rules"`
	} `json:"continuous"`
}

type verificationFacts struct {
	ImageSignature []json.RawMessage `json:"imageSignature"`
	ScanResults    []json.RawMessage `json:"scanResults"`
}

func (d definitionFacts) verifies() bool {
	return len(d.Deployment.ImageSignature)+len(d.Deployment.ScanResults)+
		len(d.Continuous.Rules.ImageSignature)+len(d.Continuous.Rules.ScanResults) > 0
}

// readBundleFacts reads data.palisade.policy (a ClusterData, as Build
// writes it) of a bundle.
func readBundleFacts(data map[string]any) (*bundleFacts, error) {
	root, _ := data[Root].(map[string]any)
	raw, err := json.Marshal(root["policy"])
	if err != nil {
		return nil, err
	}
	var f bundleFacts
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("read data.%s.policy: %w", Root, err)
	}
	return &f, nil
}

func (f *bundleFacts) schedules() Schedules {
	s := Schedules{ClusterWide: f.ClusterWide.Continuous.Schedule, Namespaces: map[string]string{}}
	if s.ClusterWide == "" {
		s.ClusterWide = policy.DefaultSchedule
	}
	for _, d := range f.Namespaced {
		sched := d.Continuous.Schedule
		if sched == "" {
			sched = policy.DefaultSchedule
		}
		for _, ns := range d.Namespaces {
			s.Namespaces[ns] = sched
		}
	}
	return s
}

func (f *bundleFacts) verifies() bool {
	if f.ClusterWide.verifies() {
		return true
	}
	for _, d := range f.Namespaced {
		if d.verifies() {
			return true
		}
	}
	return false
}

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
	// ObjectValue and OldObjectValue are the objects as AST values: the
	// webhook decodes reviews straight into them (internal/jsonast).
	// When set, the input holds them and Object and OldObject are not
	// read. The input shares them: they must not change afterwards.
	ObjectValue    ast.Value `json:"-"`
	OldObjectValue ast.Value `json:"-"`
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
// reads the clock), the namespace's labels, and the results of image
// verification.
type Facts struct {
	Now             time.Time
	NamespaceLabels map[string]string
	// Verification holds, by image reference as written in the object,
	// what imageverify found for the images the verification rules asked
	// about (Wanted): JSON-encodable values (*imageverify.ImageFacts).
	// input.facts.verification in Rego.
	Verification map[string]any
}

// value is input.facts: the namespace labels, the normalised images of
// the object (imageCache.facts), the verification facts and now, when
// known.
func (f Facts) value(images ast.Value) (ast.Value, error) {
	labels := ast.NewObjectWithCapacity(len(f.NamespaceLabels))
	for k, v := range f.NamespaceLabels {
		labels.Insert(ast.StringTerm(k), ast.StringTerm(v))
	}
	facts := ast.NewObject(
		ast.Item(ast.InternedTerm("namespaceLabels"), ast.NewTerm(labels)),
		ast.Item(ast.InternedTerm("images"), ast.NewTerm(images)),
	)
	// Without a time, Rego sees no now and expiring exceptions fail closed.
	if !f.Now.IsZero() {
		facts.Insert(ast.InternedTerm("now"), ast.StringTerm(f.Now.UTC().Format(time.RFC3339Nano)))
	}
	if f.Verification != nil {
		v, err := ast.InterfaceToValue(f.Verification)
		if err != nil {
			return nil, fmt.Errorf("convert verification facts: %w", err)
		}
		facts.Insert(ast.InternedTerm("verification"), ast.NewTerm(v))
	}
	return facts, nil
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
	input, err := e.AdmissionInput(req, facts)
	if err != nil {
		return nil, err
	}
	return e.eval(ctx, e.admission, input)
}

// AdmissionInput returns the input Admission evaluates: the request and
// the facts, image facts included. Benchmarks and other evaluators (a
// plain OPA) use it so that they decide on exactly what Palisade does.
func (e *Engine) AdmissionInput(req *Request, facts Facts) (ast.Value, error) {
	request, err := requestValue(req)
	if err != nil {
		return nil, fmt.Errorf("convert input: %w", err)
	}
	object, _ := field(request, "object").(ast.Object)
	f, err := facts.value(e.images.facts(object))
	if err != nil {
		return nil, err
	}
	return ast.NewObject(
		ast.Item(ast.InternedTerm("request"), ast.NewTerm(request)),
		ast.Item(ast.InternedTerm("facts"), ast.NewTerm(f)),
	), nil
}

// Continuous evaluates data.palisade.continuous.decision for a pod.
func (e *Engine) Continuous(ctx context.Context, pod map[string]any, facts Facts) (*Decision, error) {
	input, err := e.ContinuousInput(pod, facts)
	if err != nil {
		return nil, err
	}
	return e.eval(ctx, e.continuous, input)
}

// ContinuousInput returns the input Continuous evaluates for a pod.
func (e *Engine) ContinuousInput(pod map[string]any, facts Facts) (ast.Value, error) {
	obj, err := ast.InterfaceToValue(pod)
	if err != nil {
		return nil, fmt.Errorf("convert input: %w", err)
	}
	return e.ContinuousInputValue(obj, facts)
}

// ContinuousInputValue is ContinuousInput for a pod already converted to
// an AST value (the scanner converts typed pods straight to AST with
// internal/k8sast). The input keeps pod: it must not change afterwards.
func (e *Engine) ContinuousInputValue(pod ast.Value, facts Facts) (ast.Value, error) {
	obj, _ := pod.(ast.Object)
	f, err := facts.value(e.images.facts(obj))
	if err != nil {
		return nil, err
	}
	return ast.NewObject(
		ast.Item(ast.InternedTerm("object"), ast.NewTerm(pod)),
		ast.Item(ast.InternedTerm("facts"), ast.NewTerm(f)),
	), nil
}

// Verifies reports whether the bundle has image verification rules
// (imageSignature, scanResults): only then is there anything to gather.
func (e *Engine) Verifies() bool { return e.verifies }

// Attestors returns the bundle's attestors by name. The map is shared:
// do not modify it.
func (e *Engine) Attestors() map[string]policy.AttestorSpec { return e.attestors }

// Wanted returns what the verification rules ask Go to gather for an
// input (AdmissionInput, ContinuousInput): image reference as written →
// attestor names, sorted. It is empty when no rule selects an image, and
// nil when the bundle has no verification rules.
func (e *Engine) Wanted(ctx context.Context, input ast.Value) (map[string][]string, error) {
	if !e.verifies {
		return nil, nil
	}
	t, err := e.evaluate(ctx, e.wanted, input)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	if t == nil {
		return out, nil
	}
	obj, _ := t.Value.(ast.Object)
	if obj == nil {
		return out, nil
	}
	obj.Foreach(func(k, v *ast.Term) {
		var names []string
		each(v.Value, func(a ast.Value) { names = append(names, str(a)) })
		out[str(k.Value)] = names
	})
	return out, nil
}

// imageCache holds input.facts.images entries by image reference:
// parsing a reference is most of the cost of the facts, and the same
// images come back in request after request. The entries are immutable
// AST values, shared by concurrent evaluations.
type imageCache struct {
	mu      sync.RWMutex
	entries map[string]*ast.Term // nil: the reference does not parse
}

// imageCacheSize bounds the cache: a cluster runs far fewer distinct
// images; past the bound the cache starts over rather than grow.
const imageCacheSize = 4096

// facts returns input.facts.images for an object: every image reference
// in it (the string values of "image" keys, wherever they are) normalised
// with policy.ParseImage, so that Rego does not parse them
// (lib/images.info). A reference that does not parse is left out: Rego
// parses it and finds it invalid.
func (c *imageCache) facts(obj ast.Object) ast.Value {
	w := &imageWalker{cache: c, out: ast.NewObject()}
	w.pair, w.elem = w.visitPair, w.visitElem // bound once per walk, not per object
	if obj != nil {
		w.walk(obj)
	}
	return w.out
}

// imageWalker finds the "image" keys of an object for imageCache.facts.
type imageWalker struct {
	cache *imageCache
	out   ast.Object
	pair  func(k, v *ast.Term)
	elem  func(v *ast.Term)
}

func (w *imageWalker) walk(v ast.Value) {
	switch v := v.(type) {
	case ast.Object:
		v.Foreach(w.pair)
	case *ast.Array:
		v.Foreach(w.elem)
	}
}

func (w *imageWalker) visitPair(k, v *ast.Term) {
	if ref, ok := v.Value.(ast.String); ok {
		if key, _ := k.Value.(ast.String); key == "image" {
			if img := w.cache.get(string(ref)); img != nil {
				w.out.Insert(v, img)
			}
		}
		return
	}
	w.walk(v.Value)
}

func (w *imageWalker) visitElem(v *ast.Term) { w.walk(v.Value) }

func (c *imageCache) get(ref string) *ast.Term {
	c.mu.RLock()
	img, ok := c.entries[ref]
	c.mu.RUnlock()
	if ok {
		return img
	}
	if parsed, err := policy.ParseImage(ref); err == nil {
		img = ast.ObjectTerm(
			ast.Item(ast.InternedTerm("registry"), ast.StringTerm(parsed.Registry)),
			ast.Item(ast.InternedTerm("repository"), ast.StringTerm(parsed.Repository)),
			ast.Item(ast.InternedTerm("name"), ast.StringTerm(parsed.Name)),
			ast.Item(ast.InternedTerm("tag"), ast.StringTerm(parsed.Tag)),
			ast.Item(ast.InternedTerm("digest"), ast.StringTerm(parsed.Digest)),
			ast.Item(ast.InternedTerm("reference"), ast.StringTerm(parsed.Reference)),
			ast.Item(ast.InternedTerm("valid"), ast.InternedTerm(true)),
		)
	}
	c.mu.Lock()
	if len(c.entries) >= imageCacheSize || c.entries == nil {
		c.entries = make(map[string]*ast.Term)
	}
	c.entries[ref] = img
	c.mu.Unlock()
	return img
}

// requestValue is input.request.
func requestValue(r *Request) (ast.Object, error) {
	groups := make([]*ast.Term, len(r.UserInfo.Groups))
	for i, g := range r.UserInfo.Groups {
		groups[i] = ast.StringTerm(g)
	}
	v := ast.NewObject(
		ast.Item(ast.InternedTerm("uid"), ast.StringTerm(r.UID)),
		ast.Item(ast.InternedTerm("kind"), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("group"), ast.StringTerm(r.Kind.Group)),
			ast.Item(ast.InternedTerm("version"), ast.StringTerm(r.Kind.Version)),
			ast.Item(ast.InternedTerm("kind"), ast.StringTerm(r.Kind.Kind)),
		)),
		ast.Item(ast.InternedTerm("namespace"), ast.StringTerm(r.Namespace)),
		ast.Item(ast.InternedTerm("name"), ast.StringTerm(r.Name)),
		ast.Item(ast.InternedTerm("operation"), ast.StringTerm(r.Operation)),
		ast.Item(ast.InternedTerm("subResource"), ast.StringTerm(r.SubResource)),
		ast.Item(ast.InternedTerm("userInfo"), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("username"), ast.StringTerm(r.UserInfo.Username)),
			ast.Item(ast.InternedTerm("groups"), ast.ArrayTerm(groups...)),
		)),
	)
	for _, o := range []struct {
		key   string
		value ast.Value
		m     map[string]any
	}{{"object", r.ObjectValue, r.Object}, {"oldObject", r.OldObjectValue, r.OldObject}} {
		x := o.value
		if x == nil && o.m != nil {
			var err error
			if x, err = ast.InterfaceToValue(o.m); err != nil {
				return nil, err
			}
		}
		if x != nil {
			v.Insert(ast.InternedTerm(o.key), ast.NewTerm(x))
		}
	}
	return v, nil
}

func (e *Engine) eval(ctx context.Context, en *entry, input ast.Value) (*Decision, error) {
	t, err := e.evaluate(ctx, en, input)
	if err != nil {
		return nil, fmt.Errorf("evaluate policy: %w", err)
	}
	if t == nil {
		return nil, fmt.Errorf("evaluate policy: undefined decision")
	}
	out, _ := t.Value.(ast.Object)
	if out == nil {
		return nil, fmt.Errorf("evaluate policy: decision is not an object")
	}
	d := &Decision{Revision: e.revision, Violations: []Violation{}, Warnings: []string{}}
	if b, ok := field(out, "allowed").(ast.Boolean); ok {
		d.Allowed = bool(b)
	}
	each(field(out, "warnings"), func(w ast.Value) {
		d.Warnings = append(d.Warnings, str(w))
	})
	each(field(out, "violations"), func(item ast.Value) {
		m, _ := item.(ast.Object)
		v := Violation{
			Rule: str(field(m, "rule")), Action: str(field(m, "action")), Field: str(field(m, "field")),
			Value: str(field(m, "value")), Message: str(field(m, "message")), Containers: []string{},
		}
		each(field(m, "containers"), func(c ast.Value) {
			v.Containers = append(v.Containers, str(c))
		})
		d.Violations = append(d.Violations, v)
	})
	return d, nil
}

// field is the value of key in obj, nil when obj is nil or has no key.
func field(obj ast.Object, key string) ast.Value {
	if obj == nil {
		return nil
	}
	if t := obj.Get(ast.InternedTerm(key)); t != nil {
		return t.Value
	}
	return nil
}

// each calls f on the elements of an array, or of a set in sorted order.
func each(v ast.Value, f func(ast.Value)) {
	switch v := v.(type) {
	case *ast.Array:
		v.Foreach(func(t *ast.Term) { f(t.Value) })
	case ast.Set:
		_ = v.Iter(func(t *ast.Term) error { f(t.Value); return nil })
	}
}

func str(v ast.Value) string {
	s, _ := v.(ast.String)
	return string(s)
}
