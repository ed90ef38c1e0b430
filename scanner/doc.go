// Package scanner re-checks running pods against the continuous rules of
// the active bundle, on the policy's schedules, and acts on what it finds:
// it logs, isolates or terminates, and writes PolicyReports.
//
// Rules mean what Rego says: the scanner evaluates
// data.palisade.continuous.decision (bundles.Engine.Continuous) with the
// facts admission uses (the evaluation time, the namespace's labels and,
// with an ImageFactGatherer, the image verification results), and acts on
// the actions it returns. The global audit mode and the
// implicit exception of the system's namespace and images are applied in
// Rego; the scanner also never evaluates or acts on the system namespace,
// nor on kube-system, which the admission webhook does not see either.
//
// Lifecycle: New creates the informers, Run starts them, waits for their
// caches and scans until its context ends. Pods are read from one shared
// informer (stopped pods are filtered out by the server), namespaces and
// Palisade's NetworkPolicies from one more each; a scan calls no LIST.
// Run makes a full scan at start and on every Trigger (wire
// bundles.ClientOptions.OnActivate to it: each new revision is scanned at
// once), and otherwise scans the namespaces whose schedule is due. There
// is one cron entry (github.com/robfig/cron/v3, the syntax policy
// validation accepts, in UTC) per distinct schedule; a namespace's
// schedule is that of the namespaced definition listing it, else the
// cluster-wide one. Entries are rebuilt when a bundle brings other
// schedules. Scans run one at a time in Run's goroutine; schedules and
// triggers that arrive during a scan are merged into the next one.
//
// A scan has two steps: evaluation, which reads only the caches and
// calls no API (it is what BenchmarkScan measures), then the actions.
// Per pod the strongest action of its violations wins (terminate >
// isolate > log), and every violation is logged and recorded as a
// Warning Event (reason PolicyViolation) through client-go's recorder. A
// violation that persists is recorded again only every 30 minutes, before
// its Event expires: the recorder turns repeats into PATCHes, one API call
// per violation per scan, which a short schedule would pile up behind the
// client's rate limit.
//
//   - isolate labels the pod palisade.dev/isolated=<rule> and gives its
//     namespace the NetworkPolicy palisade-isolate, which selects the
//     labelled pods and allows no traffic. Isolation is reversible: a
//     labelled pod that no longer needs it loses the label, and the
//     NetworkPolicy goes when no pod of the namespace is labelled.
//     Nothing is written when nothing changes.
//   - terminate deletes the pod, at most TerminateBudget per namespace
//     per scan in name order; the rest are held back (logged, counted,
//     reported, isolated if one of their violations isolates) until a
//     later scan.
//
// Reports follow wgpolicyk8s.io/v1alpha2: one PolicyReport "palisade" per
// namespace with a result per violation (fail for isolate and terminate,
// warn for log) and a pass per compliant pod, bounded to
// MaxReportResults (failures first; the summary counts everything and an
// annotation says how many results were left out), and one
// ClusterPolicyReport "palisade" with a result per namespace. Reports
// carry the bundle revision, are updated in place, are not written when
// only their timestamps would change, and are deleted with the last pod
// of their namespace. Without the CRDs the scanner logs once and writes
// no reports until they appear.
package scanner
