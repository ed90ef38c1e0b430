package bundles

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// ImageFactGatherer gathers the image verification facts that a bundle's
// verification rules ask for (Wanted: image reference → attestor names),
// with the registry credentials of the pull secrets named in namespace.
// It reports failures as facts (the rules decide on them), so it returns
// no error. *imageverify.Gatherer satisfies it.
type ImageFactGatherer interface {
	Gather(ctx context.Context, eng *Engine, wanted map[string][]string, namespace string, pullSecrets []string) map[string]any
}

// Verification says who gathers a decision's image verification facts
// and with which registry credentials: the subject's namespace and the
// pull secrets its pods name. A nil Gatherer gathers nothing: the rules
// then find the images unverifiable.
type Verification struct {
	Gatherer    ImageFactGatherer
	Namespace   string
	PullSecrets []string
}

// AdmissionVerified is Admission after gathering what the verification
// rules want for the request (nothing when the bundle has none). The
// input is built once and serves both evaluations.
func (e *Engine) AdmissionVerified(ctx context.Context, req *Request, facts Facts, v Verification) (*Decision, error) {
	input, err := e.AdmissionInput(req, facts)
	if err != nil {
		return nil, err
	}
	if err := e.verify(ctx, input, v); err != nil {
		return nil, err
	}
	return e.eval(ctx, e.admission, input)
}

// ContinuousVerified is Continuous after gathering what the verification
// rules want for the pod.
func (e *Engine) ContinuousVerified(ctx context.Context, pod map[string]any, facts Facts, v Verification) (*Decision, error) {
	obj, err := ast.InterfaceToValue(pod)
	if err != nil {
		return nil, fmt.Errorf("convert input: %w", err)
	}
	return e.ContinuousVerifiedValue(ctx, obj, facts, v)
}

// ContinuousVerifiedValue is ContinuousVerified for a pod already
// converted to an AST value (ContinuousInputValue).
func (e *Engine) ContinuousVerifiedValue(ctx context.Context, pod ast.Value, facts Facts, v Verification) (*Decision, error) {
	input, err := e.ContinuousInputValue(pod, facts)
	if err != nil {
		return nil, err
	}
	if err := e.verify(ctx, input, v); err != nil {
		return nil, err
	}
	return e.eval(ctx, e.continuous, input)
}

// verify adds input.facts.verification: what v's gatherer finds for the
// images the rules want. The input is the caller's own, built for this
// decision, so it is completed in place.
func (e *Engine) verify(ctx context.Context, input ast.Value, v Verification) error {
	if !e.verifies || v.Gatherer == nil {
		return nil
	}
	wanted, err := e.Wanted(ctx, input)
	if err != nil || len(wanted) == 0 {
		return err
	}
	facts, _ := field(input.(ast.Object), "facts").(ast.Object)
	if facts == nil {
		return errors.New("verify: input without facts")
	}
	found, err := ast.InterfaceToValue(v.Gatherer.Gather(ctx, e, wanted, v.Namespace, v.PullSecrets))
	if err != nil {
		return fmt.Errorf("convert verification facts: %w", err)
	}
	facts.Insert(ast.InternedTerm("verification"), ast.NewTerm(found))
	return nil
}
