package scanner

import (
	"context"
	"encoding/json"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// isolation tracks the isolation labels one scan changed, so that the
// NetworkPolicies are reconciled with what the pods carry now rather
// than with a cache that has not seen the changes yet.
type isolation struct {
	s       *Scanner
	labeled map[string]bool // namespace/name → carries the label after this scan
}

func newIsolation(s *Scanner) *isolation {
	return &isolation{s: s, labeled: map[string]bool{}}
}

// setLabel makes the pod's isolation label rule, or removes it when rule
// is empty, with a merge patch. A pod that already has the wanted label
// is not written.
func (iso *isolation) setLabel(ctx context.Context, ev *evaluation, r *podResult, rule string, res *Result) {
	s := iso.s
	cur, has := r.pod.Labels[IsolatedLabel]
	if rule != "" && len(validation.IsValidLabelValue(rule)) > 0 {
		rule = "true" // rule names are label values; this guards the patch
	}
	if (rule == "" && !has) || (rule != "" && has && cur == rule) {
		return
	}
	var value any // nil removes the label
	if rule != "" {
		value = rule
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{IsolatedLabel: value}}})
	_, err := s.opts.Kube.CoreV1().Pods(r.pod.Namespace).Patch(ctx, r.pod.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: Component})
	switch {
	case apierrors.IsNotFound(err):
		iso.labeled[key(r)] = false
		return
	case err != nil:
		res.Errors++
		s.metrics.errors.WithLabelValues(OpIsolate).Inc()
		s.log.Error("pod isolation label not written", keyNamespace, r.pod.Namespace, keyPod, r.pod.Name, keyRule, rule, keyError, err.Error())
		return
	}
	iso.labeled[key(r)] = rule != ""
	if rule != "" {
		res.Isolated = append(res.Isolated, key(r))
		s.log.Warn("pod isolated", keyNamespace, r.pod.Namespace, keyPod, r.pod.Name, keyRule, rule, keyRevision, ev.revision)
	} else {
		res.Released = append(res.Released, key(r))
		s.log.Info("pod isolation removed", keyNamespace, r.pod.Namespace, keyPod, r.pod.Name, keyRule, cur, keyRevision, ev.revision)
	}
}

// reconcilePolicies gives every namespace where a pod carries the
// isolation label the NetworkPolicy, and removes it from every namespace
// where none does. It looks at the namespaces of the scan and at those
// that have the NetworkPolicy, and sets the isolated pods gauge.
func (iso *isolation) reconcilePolicies(ctx context.Context, ev *evaluation, res *Result) {
	s := iso.s
	all, err := s.pods.List(labels.Everything())
	if err != nil {
		return
	}
	gone := map[string]bool{}
	for _, k := range res.Terminated {
		gone[k] = true
	}
	isolated := map[string]int{} // by namespace
	total := 0
	for _, p := range all {
		if s.exempt(p.Namespace) {
			continue
		}
		k := p.Namespace + "/" + p.Name
		labeled, changed := iso.labeled[k]
		if !changed {
			_, labeled = p.Labels[IsolatedLabel]
		}
		if labeled && !gone[k] {
			isolated[p.Namespace]++
			total++
		}
	}
	s.metrics.isolated.Set(float64(total))

	namespaces := map[string]bool{}
	for _, ns := range ev.namespaces {
		namespaces[ns.name] = true
	}
	for ns := range isolated {
		namespaces[ns] = true
	}
	if existing, err := s.netpols.List(labels.Everything()); err == nil {
		for _, np := range existing {
			namespaces[np.Namespace] = true
		}
	}
	names := make([]string, 0, len(namespaces))
	for ns := range namespaces {
		if !s.exempt(ns) {
			names = append(names, ns)
		}
	}
	slices.Sort(names)
	for _, ns := range names {
		var err error
		if isolated[ns] > 0 {
			err = iso.ensurePolicy(ctx, ns)
		} else {
			err = iso.removePolicy(ctx, ns)
		}
		if err != nil {
			res.Errors++
			s.metrics.errors.WithLabelValues(OpNetworkPolicy).Inc()
			s.log.Error("isolation NetworkPolicy not reconciled", keyNamespace, ns, keyError, err.Error())
		}
	}
}

// IsolationPolicy returns the NetworkPolicy that isolates the labelled
// pods of a namespace: it selects every pod that has IsolatedLabel, and
// allows no ingress and no egress.
func IsolationPolicy(namespace string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{
			Name:      NetworkPolicyName,
			Namespace: namespace,
			Labels:    map[string]string{ManagedByLabel: ManagedBy},
		},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: IsolatedLabel, Operator: metav1.LabelSelectorOpExists,
			}}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
}

// ensurePolicy creates or corrects the namespace's NetworkPolicy; it
// writes nothing when the cached one is right.
func (iso *isolation) ensurePolicy(ctx context.Context, ns string) error {
	s := iso.s
	want := IsolationPolicy(ns)
	api := s.opts.Kube.NetworkingV1().NetworkPolicies(ns)
	cur, err := s.netpols.NetworkPolicies(ns).Get(NetworkPolicyName)
	if apierrors.IsNotFound(err) {
		_, err = api.Create(ctx, want, metav1.CreateOptions{FieldManager: Component})
		if err == nil {
			s.log.Info("isolation NetworkPolicy created", keyNamespace, ns)
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		// The cache has not seen it yet.
		if cur, err = api.Get(ctx, NetworkPolicyName, metav1.GetOptions{}); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(cur.Spec, want.Spec) && cur.Labels[ManagedByLabel] == ManagedBy {
		return nil
	}
	fixed := cur.DeepCopy()
	fixed.Spec = want.Spec
	if fixed.Labels == nil {
		fixed.Labels = map[string]string{}
	}
	fixed.Labels[ManagedByLabel] = ManagedBy
	if _, err := api.Update(ctx, fixed, metav1.UpdateOptions{FieldManager: Component}); err != nil {
		return err
	}
	s.log.Info("isolation NetworkPolicy corrected", keyNamespace, ns)
	return nil
}

// removePolicy deletes the namespace's NetworkPolicy if Palisade owns it.
func (iso *isolation) removePolicy(ctx context.Context, ns string) error {
	s := iso.s
	cur, err := s.netpols.NetworkPolicies(ns).Get(NetworkPolicyName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.Labels[ManagedByLabel] != ManagedBy {
		return nil // someone else's object under our name: not ours to delete
	}
	uid := cur.UID
	err = s.opts.Kube.NetworkingV1().NetworkPolicies(ns).Delete(ctx, NetworkPolicyName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return err
	}
	s.log.Info("isolation NetworkPolicy removed", keyNamespace, ns)
	return nil
}
