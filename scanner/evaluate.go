package scanner

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/internal/k8sast"
	"github.com/palisade-dev/palisade/policy"
)

// actionRank orders the continuous actions: the strongest of a pod's
// violations is carried out. An unknown action ranks below log and is
// only logged.
var actionRank = map[string]int{
	policy.ActionLog:       1,
	policy.ActionIsolate:   2,
	policy.ActionTerminate: 3,
}

// podResult is what one scan found about one pod, and what it did.
type podResult struct {
	pod        *corev1.Pod         // the informer's object: never modified
	violations []bundles.Violation // sorted by rule, field and value
	action     string              // the strongest action; "" without violations
	err        error               // the evaluation failed

	// Set by act.
	terminated bool // deleted in this scan
	heldBack   bool // a termination held back by the namespace's budget
}

// namespaceResult holds the pods of one namespace, sorted by name.
type namespaceResult struct {
	name string
	pods []*podResult
}

// evaluation is the outcome of the evaluation step of a scan: a decision
// for every pod in scope, nothing acted on yet.
type evaluation struct {
	revision   string
	now        time.Time
	full       bool
	namespaces []*namespaceResult // sorted by name
	evaluated  int                // pods evaluated, failures included
}

// evaluate decides about every pod of the informer cache whose namespace
// inScope accepts, on up to GOMAXPROCS goroutines. It reads only the
// caches and calls no API. The pods of the system namespace, pods being
// deleted and pods that have stopped are skipped.
func (s *Scanner) evaluate(ctx context.Context, eng *bundles.Engine, now time.Time, full bool, inScope func(namespace string) bool) (*evaluation, error) {
	all, err := s.pods.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list pods from the cache: %w", err)
	}
	todo := make([]*corev1.Pod, 0, len(all))
	nsLabels := map[string]map[string]string{}
	for _, p := range all {
		if s.skip(p) || !inScope(p.Namespace) {
			continue
		}
		todo = append(todo, p)
		if _, ok := nsLabels[p.Namespace]; !ok {
			nsLabels[p.Namespace] = s.namespaceLabels(p.Namespace)
		}
	}
	slices.SortFunc(todo, func(a, b *corev1.Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})

	results := make([]podResult, len(todo))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(todo)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(todo) || ctx.Err() != nil {
					return
				}
				p := todo[i]
				results[i] = decide(ctx, eng, s.opts.Images, p, bundles.Facts{Now: now, NamespaceLabels: nsLabels[p.Namespace]})
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	ev := &evaluation{revision: eng.Revision(), now: now, full: full, evaluated: len(results)}
	var cur *namespaceResult
	for i := range results {
		r := &results[i]
		if cur == nil || cur.name != r.pod.Namespace {
			cur = &namespaceResult{name: r.pod.Namespace}
			ev.namespaces = append(ev.namespaces, cur)
		}
		cur.pods = append(cur.pods, r)
	}
	return ev, nil
}

// skip reports whether a pod is left alone: the exempt namespaces, pods
// already being deleted, and pods that have stopped running.
func (s *Scanner) skip(p *corev1.Pod) bool {
	return s.exempt(p.Namespace) ||
		p.DeletionTimestamp != nil ||
		p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// exempt reports whether a namespace is never scanned: the system's own
// (Rego excepts it too; this is defence in depth), and kube-system, which
// the admission webhook never sees either (admission.WebhookConfiguration):
// its pods (kube-proxy, CNI agents) run privileged on the host network by
// design, and terminating them would take the cluster down.
func (s *Scanner) exempt(namespace string) bool {
	return namespace == s.opts.SystemNamespace || namespace == metav1.NamespaceSystem
}

// decide evaluates the continuous decision for one pod, with the image
// verification facts its rules ask for when images is set.
func decide(ctx context.Context, eng *bundles.Engine, images ImageFactGatherer, p *corev1.Pod, facts bundles.Facts) podResult {
	r := podResult{pod: p}
	obj, err := podObject(p)
	if err != nil {
		r.err = err
		return r
	}
	v := bundles.Verification{Gatherer: images, Namespace: p.Namespace}
	if images != nil && eng.Verifies() {
		for _, s := range p.Spec.ImagePullSecrets {
			v.PullSecrets = append(v.PullSecrets, s.Name)
		}
	}
	d, err := eng.ContinuousVerifiedValue(ctx, obj, facts, v)
	if err != nil {
		r.err = err
		return r
	}
	r.violations = d.Violations
	slices.SortFunc(r.violations, func(a, b bundles.Violation) int {
		return cmp.Or(cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Field, b.Field), cmp.Compare(a.Value, b.Value))
	})
	r.action = strongest(r.violations)
	return r
}

// podObject converts an informer's pod into the object Rego reads.
// Informers drop the type meta of their objects, and Rego tells a pod by
// its kind: without kind no rule applies. The conversion goes straight from the typed pod to AST values
// (internal/k8sast, equal to the JSON form), as it happens for every pod
// on every scan.
func podObject(p *corev1.Pod) (ast.Object, error) {
	v, err := k8sast.FromObject(p)
	if err != nil {
		return nil, fmt.Errorf("convert pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	o := v.(ast.Object)
	o.Insert(ast.InternedTerm("kind"), ast.InternedTerm("Pod"))
	o.Insert(ast.InternedTerm("apiVersion"), ast.InternedTerm("v1"))
	return o, nil
}

// strongest returns the strongest action of a set of violations.
func strongest(vs []bundles.Violation) string {
	best := ""
	for _, v := range vs {
		if best == "" || actionRank[v.Action] > actionRank[best] {
			best = v.Action
		}
	}
	return best
}

// firstRule returns the first rule (in sorted order) whose action is
// action, "" when there is none.
func firstRule(vs []bundles.Violation, action string) string {
	for _, v := range vs {
		if v.Action == action {
			return v.Rule
		}
	}
	return ""
}

// namespaceLabels returns a namespace's labels from the cache, nil when
// it is not there (Rego then sees none, as at admission).
func (s *Scanner) namespaceLabels(name string) map[string]string {
	ns, err := s.namespaces.Get(name)
	if err != nil {
		return nil
	}
	return ns.Labels
}
