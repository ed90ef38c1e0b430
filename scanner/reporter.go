package scanner

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
)

// reporter writes the PolicyReports. It remembers the fingerprint of
// every report it wrote or found, so that an unchanged report costs no
// API call; it reads the existing reports once (one LIST), and again
// after a failure.
type reporter struct {
	client  dynamic.Interface // nil: no reports
	max     int
	log     *slog.Logger
	metrics *metrics

	loaded      bool
	unavailable bool               // the CRDs are not installed (logged once)
	written     map[string]string  // fingerprint by namespace; "" is the cluster report
	summaries   map[string]Summary // by namespace, for the cluster report
	errors      int                // since the last takeErrors
}

func newReporter(client dynamic.Interface, max int, log *slog.Logger, m *metrics) *reporter {
	return &reporter{client: client, max: max, log: log, metrics: m}
}

// takeErrors returns the failures since the last call.
func (r *reporter) takeErrors() int {
	n := r.errors
	r.errors = 0
	return n
}

func (r *reporter) fail(report string, err error) {
	r.errors++
	r.metrics.errors.WithLabelValues(OpReport).Inc()
	r.log.Error("PolicyReport not written", keyReport, report, keyError, err.Error())
}

// sync writes the reports of the evaluated namespaces, deletes those of
// namespaces without pods (hasPods), and updates the cluster report.
func (r *reporter) sync(ctx context.Context, ev *evaluation, hasPods func(namespace string) bool) {
	if r.client == nil {
		return
	}
	if !r.loaded {
		if err := r.load(ctx); err != nil {
			return
		}
	}
	api := r.client.Resource(PolicyReportGVR)
	for _, ns := range ev.namespaces {
		rep := namespaceReport(ns.pods, ev.revision, r.max)
		r.summaries[ns.name] = rep.summary
		fp := rep.fingerprint()
		if r.written[ns.name] == fp {
			continue
		}
		if err := write(ctx, api.Namespace(ns.name), rep.object(ns.name, ev.now)); err != nil {
			r.fail(ns.name+"/"+ReportName, err)
			delete(r.written, ns.name) // read it again next time
			continue
		}
		r.written[ns.name] = fp
		if rep.omitted > 0 {
			r.log.Warn("PolicyReport bounded", keyReport, ns.name+"/"+ReportName, keyOmitted, rep.omitted)
		}
	}
	evaluated := map[string]bool{}
	for _, ns := range ev.namespaces {
		evaluated[ns.name] = true
	}
	for _, ns := range sortedKeys(r.summaries) {
		if evaluated[ns] || hasPods(ns) {
			continue
		}
		err := api.Namespace(ns).Delete(ctx, ReportName, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			r.fail(ns+"/"+ReportName, err)
			continue
		}
		delete(r.summaries, ns)
		delete(r.written, ns)
		r.log.Info("PolicyReport removed", keyReport, ns+"/"+ReportName)
	}

	rep := clusterReport(r.summaries, ev.revision, r.max)
	if fp := rep.fingerprint(); r.written[""] != fp {
		if err := write(ctx, r.client.Resource(ClusterPolicyReportGVR), rep.object("", ev.now)); err != nil {
			r.fail(ReportName, err)
			delete(r.written, "")
			return
		}
		r.written[""] = fp
	}
}

// load reads the reports Palisade wrote before: their fingerprints and
// summaries. Without the CRDs it logs once and reports nothing until
// they are installed.
func (r *reporter) load(ctx context.Context) error {
	sel := labels.SelectorFromSet(labels.Set{ManagedByLabel: ManagedBy}).String()
	list, err := r.client.Resource(PolicyReportGVR).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err == nil {
		var cluster *unstructured.Unstructured
		cluster, err = r.client.Resource(ClusterPolicyReportGVR).Get(ctx, ReportName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cluster, err = nil, nil
			// A missing CRD also answers 404: tell the two apart.
			if _, lerr := r.client.Resource(ClusterPolicyReportGVR).List(ctx, metav1.ListOptions{Limit: 1}); lerr != nil {
				err = lerr
			}
		}
		if err == nil {
			r.written, r.summaries = map[string]string{}, map[string]Summary{}
			for i := range list.Items {
				item := &list.Items[i]
				if item.GetName() != ReportName {
					continue
				}
				r.written[item.GetNamespace()] = item.GetAnnotations()[AnnotationFingerprint]
				r.summaries[item.GetNamespace()] = summaryOf(item)
			}
			if cluster != nil {
				r.written[""] = cluster.GetAnnotations()[AnnotationFingerprint]
			}
			r.loaded = true
			if r.unavailable {
				r.log.Info("PolicyReports enabled")
			}
			r.unavailable = false
			return nil
		}
	}
	if apierrors.IsNotFound(err) {
		if !r.unavailable {
			r.log.Warn("PolicyReport CRDs not installed, no reports until they are", keyError, err.Error())
		}
		r.unavailable = true
		return err
	}
	r.errors++
	r.metrics.errors.WithLabelValues(OpReport).Inc()
	r.log.Error("PolicyReports not read", keyError, fmt.Errorf("read existing reports: %w", err).Error())
	return err
}

// write creates obj, or replaces the stored object of its name.
func write(ctx context.Context, api dynamic.ResourceInterface, obj *unstructured.Unstructured) error {
	cur, err := api.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = api.Create(ctx, obj, metav1.CreateOptions{FieldManager: Component})
		return err
	}
	if err != nil {
		return err
	}
	obj.SetResourceVersion(cur.GetResourceVersion())
	_, err = api.Update(ctx, obj, metav1.UpdateOptions{FieldManager: Component})
	return err
}

// sortedKeys returns the keys of a map in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare[string])
	return keys
}
