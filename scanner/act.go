package scanner

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/palisade-dev/palisade/policy"
)

// maxMessage bounds an Event message and the strings of a report result:
// a violation's value quotes the pod and could be long.
const maxMessage = 1024

// act carries out the actions of an evaluation, namespace by namespace:
// every violation is logged and becomes an Event on its pod (once per
// eventRepeat while it persists); the pods
// whose strongest action is terminate are deleted within the budget; the
// pods whose strongest action is isolate are labelled and the labels of
// pods that no longer need isolation are removed; then each namespace's
// NetworkPolicy is made to match its labelled pods.
func (s *Scanner) act(ctx context.Context, ev *evaluation) *Result {
	res := &Result{Revision: ev.revision, Full: ev.full, Namespaces: len(ev.namespaces), Evaluated: ev.evaluated}
	s.metrics.evaluated.Add(float64(ev.evaluated))
	iso := newIsolation(s)
	for _, ns := range ev.namespaces {
		if s.exempt(ns.name) {
			continue // evaluate never returns them; never act there
		}
		s.actOn(ctx, ev, ns, iso, res)
	}
	iso.reconcilePolicies(ctx, ev, res)
	s.pruneEvents()
	return res
}

// eventRepeat is how often a violation that persists is recorded again.
// Events expire an hour after their last update (the API server's default
// --event-ttl); recording every violation on every scan would cost an API
// call per violation per scan (the recorder aggregates repeats into a
// PATCH, it does not skip them) and queue up behind the client's rate
// limit.
const eventRepeat = 30 * time.Minute

// eventKey identifies what an Event says about a pod.
type eventKey struct {
	uid           types.UID
	rule, message string
}

// event records a violation as a Warning Event on its pod, unless the same
// one was recorded within eventRepeat.
func (s *Scanner) event(r *podResult, rule, message string) {
	k := eventKey{r.pod.UID, rule, message}
	now := time.Now()
	if last, ok := s.recorded[k]; ok && now.Sub(last) < eventRepeat {
		return
	}
	s.recorded[k] = now
	s.recorder.Event(r.pod, corev1.EventTypeWarning, EventReason, truncate(message, maxMessage))
}

// pruneEvents forgets what was recorded long enough ago to be recorded
// again anyway: the pods that are gone, the violations that ended.
func (s *Scanner) pruneEvents() {
	now := time.Now()
	for k, last := range s.recorded {
		if now.Sub(last) >= eventRepeat {
			delete(s.recorded, k)
		}
	}
}

func (s *Scanner) actOn(ctx context.Context, ev *evaluation, ns *namespaceResult, iso *isolation, res *Result) {
	var condemned []*podResult // sorted by name, as ns.pods
	for _, r := range ns.pods {
		if r.err != nil {
			res.Errors++
			s.metrics.errors.WithLabelValues(OpEvaluate).Inc()
			s.log.Error("pod evaluation failed", keyNamespace, ns.name, keyPod, r.pod.Name, keyRevision, ev.revision, keyError, r.err.Error())
			continue
		}
		for _, v := range r.violations {
			res.Violations++
			s.metrics.violations.WithLabelValues(v.Rule, v.Action).Inc()
			// No message: its value may quote the pod. The Event has it.
			s.log.Info("policy violation", keyNamespace, ns.name, keyPod, r.pod.Name, keyRule, v.Rule,
				keyAction, v.Action, keyContainers, v.Containers, keyRevision, ev.revision)
			s.event(r, v.Rule, v.Message)
		}
		if r.action == policy.ActionTerminate {
			condemned = append(condemned, r)
		}
	}

	for i, r := range condemned {
		if i >= s.opts.TerminateBudget {
			r.heldBack = true
			res.HeldBack = append(res.HeldBack, key(r))
			s.metrics.heldBack.Inc()
			s.log.Warn("pod termination held back", keyNamespace, ns.name, keyPod, r.pod.Name,
				keyRule, firstRule(r.violations, policy.ActionTerminate), keyBudget, s.opts.TerminateBudget, keyRevision, ev.revision)
			continue
		}
		s.terminate(ctx, ev, r, res)
	}

	for _, r := range ns.pods {
		if r.err != nil || r.terminated {
			continue // an unknown state keeps its label
		}
		want := ""
		// A pod whose termination did not happen is still isolated when
		// one of its violations says so.
		if r.action == policy.ActionIsolate || r.action == policy.ActionTerminate {
			want = firstRule(r.violations, policy.ActionIsolate)
		}
		iso.setLabel(ctx, ev, r, want, res)
	}
}

// terminate deletes a pod. The UID precondition keeps a pod recreated
// under the same name since the cache saw it from being deleted.
func (s *Scanner) terminate(ctx context.Context, ev *evaluation, r *podResult, res *Result) {
	uid := r.pod.UID
	err := s.opts.Kube.CoreV1().Pods(r.pod.Namespace).Delete(ctx, r.pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	rule := firstRule(r.violations, policy.ActionTerminate)
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		// Gone already, or another pod by now: nothing to terminate.
		s.log.Debug("pod to terminate is gone", keyNamespace, r.pod.Namespace, keyPod, r.pod.Name)
		r.terminated = true
	case err != nil:
		res.Errors++
		s.metrics.errors.WithLabelValues(OpTerminate).Inc()
		s.log.Error("pod termination failed", keyNamespace, r.pod.Namespace, keyPod, r.pod.Name, keyRule, rule, keyError, err.Error())
	default:
		r.terminated = true
		res.Terminated = append(res.Terminated, key(r))
		s.metrics.terminated.Inc()
		s.log.Warn("pod terminated", keyNamespace, r.pod.Namespace, keyPod, r.pod.Name, keyRule, rule, keyRevision, ev.revision)
	}
}

// key is a pod's namespace/name.
func key(r *podResult) string { return r.pod.Namespace + "/" + r.pod.Name }

// truncate shortens s to at most n bytes, on a rune boundary, marking the
// cut with an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "") + ellipsis
}
