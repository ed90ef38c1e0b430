package match_test

import (
	"math/rand/v2"
	"strings"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// gen generates valid rulesets, policies and events from a small
// vocabulary, so that conditions hit as often as they miss.
type gen struct {
	r *rand.Rand
	// x draws what later conditions and facts add (workloads, container
	// names, learned rules) from a stream of its own, so that r draws
	// the same policies and events for a seed as before they existed.
	x *gen
}

func newGen(seed uint64) *gen {
	return &gen{
		r: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		x: &gen{r: rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d))},
	}
}

var (
	fileOps    = []string{"createExecutable", "modifyExecutable", "createFile", "modifyFile", "deleteFile"}
	processOps = []string{"fork", "exec"}
	segments   = []string{"etc", "usr", "bin", "tmp", "app", "ssl", "x", "passwd", "lib", "a.b", "payments-api"}
	namespaces = []string{"default", "shop", "payments", "ci", "palisade-system", ""}
	podNames   = []string{"web-1", "web-2", "api-7f", "payments-api-0", "w*b", ""}
	labelKeys  = []string{"app", "tier", "acme.io/team"}
	labelVals  = []string{"web", "web-frontend", "api", "payments-api", "", "v:1"}
	procNames  = []string{"sh", "bash", "python", "payments-api", "cat"}
	workloads  = []string{"Deployment/web", "Deployment/web-api", "StatefulSet/db", "CronJob/nightly", "Pod/web-1", ""}
	containers = []string{"app", "sidecar", "init", ""}
	images     = [][3]string{
		{"ghcr.io/acme/web", "acme/web", "1.0"},
		{"ghcr.io/acme/payments", "acme/payments", "2.1"},
		{"docker.io/library/nginx", "library/nginx", "1.25"},
	}
	clusters = [][2]string{{"c-1", "prod"}, {"c-2", "staging"}}
)

func (g *gen) pick(list []string) string { return list[g.r.IntN(len(list))] }

func (g *gen) chance(n int) bool { return g.r.IntN(n) == 0 }

// some returns 1 to 3 picks from list, or nil (the condition left out)
// half of the time.
func (g *gen) some(list []string) []string {
	if g.chance(2) {
		return nil
	}
	out := make([]string, 1+g.r.IntN(3))
	for i := range out {
		out[i] = g.pick(list)
	}
	return out
}

func (g *gen) path() string {
	var b strings.Builder
	for range 1 + g.r.IntN(4) {
		b.WriteString("/")
		b.WriteString(g.pick(segments))
	}
	return b.String()
}

// executable is a path, now and then one with glob characters (which
// learned executables match literally).
func (g *gen) executable() string {
	if g.x.chance(8) {
		return g.path() + "/[x]"
	}
	return g.path()
}

// pattern is a path pattern: segments, `*` within one, `**` across,
// and now and then the glob syntax policy validation also accepts.
func (g *gen) pattern() string {
	var b strings.Builder
	for range 1 + g.r.IntN(3) {
		b.WriteString("/")
		switch g.r.IntN(8) {
		case 0:
			b.WriteString("*")
		case 1:
			b.WriteString("**")
		case 2:
			b.WriteString(g.pick(segments)[:1] + "*")
		case 3:
			b.WriteString("{etc,tmp}")
		case 4:
			b.WriteString("?in")
		default:
			b.WriteString(g.pick(segments))
		}
	}
	return b.String()
}

func (g *gen) patterns() []string {
	if g.chance(2) {
		return nil
	}
	out := make([]string, 1+g.r.IntN(2))
	for i := range out {
		out[i] = g.pattern()
	}
	return out
}

// wildcards are values with, now and then, a trailing `*` on a prefix.
func (g *gen) wildcards(list []string) []string {
	out := g.some(list)
	for i, v := range out {
		if g.chance(2) {
			out[i] = v[:g.r.IntN(len(v)+1)] + "*"
		}
	}
	return out
}

func (g *gen) labels() []string {
	if g.chance(2) {
		return nil
	}
	out := make([]string, 1+g.r.IntN(2))
	for i := range out {
		v := g.pick(labelVals)
		if g.chance(2) {
			v = v[:g.r.IntN(len(v)+1)] + "*"
		}
		out[i] = g.pick(labelKeys) + ":" + v
	}
	return out
}

func (g *gen) selector(name string, file bool) policy.Selector {
	s := policy.Selector{Name: name}
	img := images[g.r.IntN(len(images))]
	cl := clusters[g.r.IntN(len(clusters))]
	// Each condition is given one time in three at most, so that
	// selectors of many conditions still match now and then.
	if g.chance(2) {
		if file {
			s.Operation = g.some(fileOps)
		} else {
			s.Operation = g.some(processOps)
		}
	}
	if g.chance(4) {
		s.ContainerImageFullName = []string{img[0]}
	}
	if g.chance(4) {
		s.ContainerImageName = []string{img[1]}
	}
	if g.chance(4) {
		s.ContainerImageTag = []string{img[2]}
	}
	if g.chance(5) {
		s.KubernetesClusterID = []string{cl[0]}
	}
	if g.chance(5) {
		s.KubernetesClusterName = []string{cl[1]}
	}
	if g.chance(3) {
		s.KubernetesNamespace = g.some(namespaces[:5])
	}
	if g.chance(3) {
		s.KubernetesPodName = g.wildcards(podNames[:5])
	}
	if g.chance(3) {
		s.KubernetesPodLabel = g.labels()
	}
	if g.x.chance(3) {
		s.KubernetesWorkload = g.x.wildcards(workloads[:5])
	}
	if g.x.chance(3) {
		s.ContainerName = g.x.some(containers[:3])
	}
	if file && g.chance(2) {
		s.TargetFilePath = g.patterns()
	}
	if g.chance(3) {
		s.ProcessExecutable = g.patterns()
	}
	if g.chance(3) {
		s.ProcessName = g.some(procNames)
	}
	if file {
		s.IgnoreVolumeMounts = g.chance(5)
		s.IgnoreVolumeFiles = g.chance(5)
	} else if g.chance(3) {
		v := g.chance(2)
		s.SessionLeaderInteractive = &v
	}
	return s
}

var selectorNames = []string{"a", "b", "c", "d", "e"}

func (g *gen) section(file bool) *policy.D4CSection {
	s := &policy.D4CSection{}
	n := 1 + g.r.IntN(len(selectorNames))
	for _, name := range selectorNames[:n] {
		s.Selectors = append(s.Selectors, g.selector(name, file))
	}
	for range 1 + g.r.IntN(3) {
		r := policy.Response{}
		for range 1 + g.r.IntN(3) {
			r.Match = append(r.Match, selectorNames[g.r.IntN(n)])
		}
		if g.chance(2) {
			r.Exclude = []string{selectorNames[g.r.IntN(n)]}
		}
		switch g.r.IntN(4) {
		case 0:
			r.Actions = []string{"log"}
		case 1:
			r.Actions = []string{"alert"}
		case 2:
			r.Actions = []string{"alert", "block"}
		default:
			r.Actions = []string{"log", "alert", "block"}
		}
		s.Responses = append(s.Responses, r)
	}
	return s
}

func (g *gen) ruleset() policy.RuntimeRulesetSpec {
	spec := policy.RuntimeRulesetSpec{Mode: g.pick([]string{policy.ModeEnforce, policy.ModeAudit, policy.ModeLearning})}
	switch g.r.IntN(3) {
	case 0:
		spec.File = g.section(true)
	case 1:
		spec.Process = g.section(false)
	default:
		spec.File, spec.Process = g.section(true), g.section(false)
	}
	return spec
}

var rulesetNames = []string{"r1", "r2", "r3"}

// repo returns a repository with one policy for cluster "test": random
// rulesets, a cluster-wide definition and up to two namespaced ones.
func (g *gen) repo() *policy.Repo {
	repo := &policy.Repo{Rulesets: map[string]*policy.RuntimeRuleset{}}
	for _, name := range rulesetNames {
		repo.Rulesets[name] = &policy.RuntimeRuleset{Metadata: policy.Metadata{Name: name}, Spec: g.ruleset()}
	}
	// Learned rules, compiled as the loader does, in half the rulesets.
	for _, name := range rulesetNames {
		if g.x.chance(2) {
			policy.CompileLearned(repo.Rulesets[name], g.x.learned(name))
		}
	}
	spec := policy.PolicySpec{
		Clusters:        []string{"test"},
		Mode:            g.pick([]string{policy.ModeEnforce, policy.ModeEnforce, policy.ModeAudit}),
		SystemNamespace: "palisade-system",
	}
	spec.ClusterWide.Runtime.Rulesets = g.some(rulesetNames)
	taken := map[string]bool{}
	for i := range g.r.IntN(3) {
		nd := policy.NamespacedDefinition{Name: "ns" + string(rune('0'+i))}
		for _, ns := range g.some(namespaces[1:4]) {
			if !taken[ns] {
				taken[ns] = true
				nd.Namespaces = append(nd.Namespaces, ns)
			}
		}
		nd.Runtime.Rulesets = g.some(rulesetNames)
		spec.Namespaced = append(spec.Namespaced, nd)
	}
	repo.Policies = []*policy.Policy{{Metadata: policy.Metadata{Name: "test"}, Spec: spec}}
	return repo
}

// learned returns LearnedRules for a ruleset: one or two workload
// entries from the vocabulary, with executables and file rules.
func (g *gen) learned(name string) *policy.LearnedRules {
	l := &policy.LearnedRules{Metadata: policy.Metadata{Name: name}}
	for range 1 + g.r.IntN(2) {
		w := policy.LearnedWorkload{
			Namespace: g.pick(namespaces[:4]), Workload: g.pick(workloads[:5]), Container: g.pick(containers[:3]),
		}
		for range g.r.IntN(3) {
			p := policy.LearnedProcess{Executable: g.path()}
			if g.chance(3) {
				p.Executable += "/[x]" // glob characters, literal in an executable
			}
			if !g.chance(3) {
				v := g.chance(2)
				p.Interactive = &v
			}
			w.Process = append(w.Process, p)
		}
		for range g.r.IntN(3) {
			w.File = append(w.File, policy.LearnedFile{Operation: g.some(fileOps), Path: g.pattern()})
		}
		l.Spec.Workloads = append(l.Spec.Workloads, w)
	}
	return l
}

// event returns a random event of either kind; for process events the
// path is the executable, as the sensor reports them.
func (g *gen) event() *bundles.RuntimeEvent {
	ev := &bundles.RuntimeEvent{
		ProcessExecutable: g.executable(),
		ProcessName:       g.pick(procNames),
		Interactive:       g.chance(2),
	}
	if g.chance(2) {
		ev.Kind, ev.Operation, ev.Path = bundles.EventFile, g.pick(fileOps), g.path()
		ev.OnVolume = g.chance(3)
		ev.OnVolumeFile = ev.OnVolume && g.chance(2)
	} else {
		ev.Kind, ev.Operation, ev.Path = bundles.EventProcess, g.pick(processOps), ev.ProcessExecutable
	}
	if g.chance(30) {
		ev.Kind = "network" // not a section: nothing matches
	}
	return ev
}

// container returns random facts, or nil (a host process) now and then.
func (g *gen) container() *bundles.Container {
	if g.chance(20) {
		return nil
	}
	img := images[g.r.IntN(len(images))]
	cl := clusters[g.r.IntN(len(clusters))]
	c := &bundles.Container{
		ImageFullName: img[0], ImageName: img[1], ImageTag: img[2],
		Namespace: g.pick(namespaces), PodName: g.pick(podNames),
		PodLabels: map[string]string{}, ClusterID: cl[0], ClusterName: cl[1],
		Workload: g.x.pick(workloads), ContainerName: g.x.pick(containers),
	}
	for _, k := range labelKeys {
		if g.chance(2) {
			c.PodLabels[k] = g.pick(labelVals)
		}
	}
	return c
}
