package scanner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/palisade-dev/palisade/policy"
)

// The resources of the Kubernetes policy working group's reports, the
// format Kyverno writes and Policy Reporter reads.
var (
	PolicyReportGVR        = schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"}
	ClusterPolicyReportGVR = schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "clusterpolicyreports"}
)

// Values of a report result.
const (
	ResultPass  = "pass"
	ResultFail  = "fail"
	ResultWarn  = "warn"
	ResultError = "error"
	ResultSkip  = "skip"

	reportPolicy   = "palisade"
	reportSource   = "palisade"
	reportCategory = "continuous"
	// RuleAll is the rule of a pod's pass (or error) result: every rule.
	RuleAll = "all"
	// RuleNamespace is the rule of the ClusterPolicyReport's results: one
	// per namespace, with its counts.
	RuleNamespace = "namespace"
)

// Summary counts the results of a report, those left out included.
type Summary struct {
	Pass  int64 `json:"pass"`
	Fail  int64 `json:"fail"`
	Warn  int64 `json:"warn"`
	Error int64 `json:"error"`
	Skip  int64 `json:"skip"`
}

func (s *Summary) add(result string) {
	switch result {
	case ResultPass:
		s.Pass++
	case ResultFail:
		s.Fail++
	case ResultWarn:
		s.Warn++
	case ResultError:
		s.Error++
	case ResultSkip:
		s.Skip++
	}
}

func (s Summary) object() map[string]any {
	return map[string]any{"pass": s.Pass, "fail": s.Fail, "warn": s.Warn, "error": s.Error, "skip": s.Skip}
}

// worst is the most severe result a summary counts.
func (s Summary) worst() string {
	switch {
	case s.Fail > 0:
		return ResultFail
	case s.Error > 0:
		return ResultError
	case s.Warn > 0:
		return ResultWarn
	}
	return ResultPass
}

// resultOrder ranks results: a bounded report keeps failures first.
var resultOrder = map[string]int{ResultFail: 0, ResultError: 1, ResultWarn: 2, ResultPass: 3, ResultSkip: 4}

// report is a PolicyReport or ClusterPolicyReport before its timestamps:
// what its fingerprint covers.
type report struct {
	results  []map[string]any // bounded, in result order
	summary  Summary
	omitted  int
	revision string
}

// newReport orders results by severity (stable: pod and rule order stay)
// and keeps at most max of them.
func newReport(results []map[string]any, summary Summary, revision string, max int) *report {
	buckets := make([][]map[string]any, len(resultOrder))
	for _, r := range results {
		i := resultOrder[r["result"].(string)]
		buckets[i] = append(buckets[i], r)
	}
	ordered := make([]map[string]any, 0, len(results))
	for _, b := range buckets {
		ordered = append(ordered, b...)
	}
	rep := &report{summary: summary, revision: revision}
	if len(ordered) > max {
		rep.omitted = len(ordered) - max
		ordered = ordered[:max]
	}
	rep.results = ordered
	return rep
}

// namespaceReport is the report of one namespace's evaluated pods: one
// result per violation (fail for isolate and terminate, warn for log),
// one pass result per compliant pod, one error result per pod that could
// not be evaluated.
func namespaceReport(pods []*podResult, revision string, max int) *report {
	var results []map[string]any
	var sum Summary
	for _, r := range pods {
		res := []any{podRef(r)}
		switch {
		case r.err != nil:
			results = append(results, map[string]any{
				"policy": reportPolicy, "rule": RuleAll, "result": ResultError, "source": reportSource,
				"category": reportCategory, "message": truncate("evaluation failed: "+r.err.Error(), maxMessage),
				"resources": res, "properties": map[string]any{"revision": revision},
			})
			sum.add(ResultError)
		case len(r.violations) == 0:
			results = append(results, map[string]any{
				"policy": reportPolicy, "rule": RuleAll, "result": ResultPass, "source": reportSource,
				"category": reportCategory, "message": "no continuous rule violated", "scored": true,
				"resources": res,
			})
			sum.add(ResultPass)
		}
		for _, v := range r.violations {
			result, severity := ResultWarn, "medium"
			if v.Action == policy.ActionIsolate || v.Action == policy.ActionTerminate {
				result, severity = ResultFail, "high"
			}
			props := map[string]any{
				"action":     v.Action,
				"revision":   revision,
				"containers": truncate(strings.Join(v.Containers, ","), maxMessage),
				"field":      truncate(v.Field, maxMessage),
				"value":      truncate(v.Value, maxMessage),
			}
			if r.heldBack && v.Action == policy.ActionTerminate {
				props["heldBack"] = "true"
			}
			results = append(results, map[string]any{
				"policy": reportPolicy, "rule": v.Rule, "result": result, "severity": severity, "source": reportSource,
				"category": reportCategory, "message": truncate(v.Message, maxMessage), "scored": true,
				"resources": res, "properties": props,
			})
			sum.add(result)
		}
	}
	return newReport(results, sum, revision, max)
}

func podRef(r *podResult) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod", "namespace": r.pod.Namespace, "name": r.pod.Name, "uid": string(r.pod.UID),
	}
}

// clusterReport summarises the namespace reports: one result per
// namespace, the worst of its results, with its counts as properties.
func clusterReport(summaries map[string]Summary, revision string, max int) *report {
	var results []map[string]any
	var total Summary
	for _, ns := range sortedKeys(summaries) {
		s := summaries[ns]
		total.Pass += s.Pass
		total.Fail += s.Fail
		total.Warn += s.Warn
		total.Error += s.Error
		total.Skip += s.Skip
		results = append(results, map[string]any{
			"policy": reportPolicy, "rule": RuleNamespace, "result": s.worst(), "source": reportSource,
			"category":  reportCategory,
			"message":   "pods of namespace " + ns + " re-checked; see its PolicyReport " + ReportName,
			"resources": []any{map[string]any{"apiVersion": "v1", "kind": "Namespace", "name": ns}},
			"properties": map[string]any{
				"pass": strconv.FormatInt(s.Pass, 10), "fail": strconv.FormatInt(s.Fail, 10),
				"warn": strconv.FormatInt(s.Warn, 10), "error": strconv.FormatInt(s.Error, 10),
			},
		})
	}
	// The cluster report's summary counts the namespaces' results, so that
	// it reads as the cluster's totals.
	return newReport(results, total, revision, max)
}

// fingerprint identifies a report's content without its timestamps: a
// report whose fingerprint is unchanged is not written again.
func (r *report) fingerprint() string {
	data, _ := json.Marshal(map[string]any{
		"results": r.results, "summary": r.summary, "omitted": r.omitted, "revision": r.revision,
	})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// object returns the report as a PolicyReport (namespace set) or a
// ClusterPolicyReport, its results stamped with now.
func (r *report) object(namespace string, now time.Time) *unstructured.Unstructured {
	kind := "ClusterPolicyReport"
	if namespace != "" {
		kind = "PolicyReport"
	}
	stamp := map[string]any{"seconds": now.Unix(), "nanos": int64(now.Nanosecond())}
	results := make([]any, len(r.results))
	for i, res := range r.results {
		stamped := make(map[string]any, len(res)+1)
		for k, v := range res {
			stamped[k] = v
		}
		stamped["timestamp"] = stamp
		results[i] = stamped
	}
	annotations := map[string]any{AnnotationRevision: r.revision, AnnotationFingerprint: r.fingerprint()}
	if r.omitted > 0 {
		annotations[AnnotationOmitted] = strconv.Itoa(r.omitted)
	}
	meta := map[string]any{
		"name":        ReportName,
		"labels":      map[string]any{ManagedByLabel: ManagedBy},
		"annotations": annotations,
	}
	if namespace != "" {
		meta["namespace"] = namespace
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": PolicyReportGVR.GroupVersion().String(),
		"kind":       kind,
		"metadata":   meta,
		"summary":    r.summary.object(),
		"results":    results,
	}}
}

// summaryOf reads the summary of a stored report.
func summaryOf(obj *unstructured.Unstructured) Summary {
	get := func(k string) int64 {
		v, _, _ := unstructured.NestedInt64(obj.Object, "summary", k)
		return v
	}
	return Summary{Pass: get("pass"), Fail: get("fail"), Warn: get("warn"), Error: get("error"), Skip: get("skip")}
}
