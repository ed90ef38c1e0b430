package learning

import (
	"bytes"
	"fmt"
	"math/rand"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/glob"
	"gopkg.in/yaml.v3"
)

var genT0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// genFile is an observed file behaviour of a test profile.
type genFile struct{ op, path string }

// genProfile builds a one-workload profile of file behaviours, each seen
// once in pods (default: two replicas of Deployment/web).
func genProfile(workload string, pods []string, files ...genFile) *Profile {
	if pods == nil {
		pods = []string{"web-7f9c5d6b8-abcde", "web-7f9c5d6b8-fghij"}
	}
	id := WorkloadID{Namespace: "shop", Workload: workload, Container: "app", Image: "registry.example/shop/web"}
	w := &WorkloadProfile{ID: id}
	for i, f := range files {
		w.Behaviour = append(w.Behaviour, Behaviour{
			Key:      Key{Kind: KindFile, Operation: f.op, Path: f.path},
			Evidence: Evidence{Count: 1, FirstSeen: genT0.Add(time.Duration(i) * time.Minute), LastSeen: genT0.Add(time.Hour), Pods: pods},
		})
	}
	return &Profile{Ruleset: "shop_runtime", Workloads: map[string]*WorkloadProfile{WorkloadKey(id): w}, LastNew: genT0}
}

func genCreate(paths ...string) []genFile {
	out := make([]genFile, len(paths))
	for i, p := range paths {
		out[i] = genFile{"createFile", p}
	}
	return out
}

func genNames(dir string, n int) []string {
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu")
	out := make([]string, n)
	for i := range out {
		out[i] = dir + "/" + words[i%len(words)] + strings.Repeat("x", i/len(words))
	}
	return out
}

// genRule is an expected file rule: path, operations, distinct paths, and
// a substring of the reason.
type genRule struct {
	path, ops string
	distinct  int
	reason    string
}

func TestGeneraliseFilePaths(t *testing.T) {
	for _, tc := range []struct {
		name     string
		workload string
		pods     []string
		opts     GeneraliseOptions
		files    []genFile
		want     []genRule
	}{{
		name:  "numbers become * within their segment",
		files: genCreate("/proc/1234/status", "/proc/99/status", "/proc/5/status", "/var/log/app/app.1.log", "/var/log/app/app.2.log"),
		want: []genRule{
			{"/proc/*/status", "createFile", 3, "3 paths differ only in number parts"},
			{"/var/log/app/app.*.log", "createFile", 2, "number"},
		},
	}, {
		name:  "timestamps of digits and underscores",
		files: genCreate("/var/run/secrets/app/..2026_12_01_10_00_00.123456789/token"),
		want:  []genRule{{"/var/run/secrets/app/..*_*_*_*_*_*.*/token", "createFile", 1, "1 path with a variable number part"}},
	}, {
		name:  "hex and hash-like names, short or digitless hex stays",
		files: genCreate("/var/cache/app/3f2a9c1d0b7e/data", "/var/cache/app/0a1b2c3d4e5f/data", "/srv/app/cafe12/x", "/srv/app/deadbeefcafe/x"),
		want: []genRule{
			{"/srv/app/cafe12/x", "createFile", 1, "exact path"},
			{"/srv/app/deadbeefcafe/x", "createFile", 1, "exact path"},
			{"/var/cache/app/*/data", "createFile", 2, "hex"},
		},
	}, {
		name:  "uuid",
		files: genCreate("/data/sessions/123e4567-e89b-12d3-a456-426614174000.json", "/data/sessions/9B2E0C6A-1F3D-4E5A-8C7B-0D1E2F3A4B5C.json"),
		want:  []genRule{{"/data/sessions/*.json", "createFile", 2, "uuid"}},
	}, {
		name:  "pod name: the generated suffix of a Deployment's pod",
		files: genCreate("/data/web-7f9c5d6b8-abcde/out.log", "/data/web-7f9c5d6b8-fghij/out.log", "/var/log/app/7f9c5d6b8-abcde.log"),
		want: []genRule{
			{"/data/web-*/out.log", "createFile", 2, "2 paths differ only in pod name parts"},
			{"/var/log/app/*.log", "createFile", 1, "pod name"},
		},
	}, {
		name:     "pod name: a StatefulSet's ordinal",
		workload: "StatefulSet/db",
		pods:     []string{"db-0", "db-1"},
		files:    genCreate("/data/db-0/wal", "/data/db-1/wal"),
		want:     []genRule{{"/data/db-*/wal", "createFile", 2, "2 paths differ only in pod name parts"}},
	}, {
		name:     "a bare pod's name is its identity, not generated",
		workload: "Pod/runner",
		pods:     []string{"runner"},
		files:    genCreate("/data/runner/x"),
		want:     []genRule{{"/data/runner/x", "createFile", 1, "exact path"}},
	}, {
		name: "temp names",
		files: genCreate("/tmp/tmp.aB3dE5fG7h/x", "/tmp/tmp.zzzzzzzzzz/x", "/var/lib/app/config.yaml.tmp",
			"/tmp/go-build2837465/b001", "/tmp/tmpk3j4h5l6", "/var/lib/tmpfiles/x", "/tmp/sess_Ab3dE9"),
		want: []genRule{
			{"/tmp/go-build*/b001", "createFile", 1, "temp name"},
			{"/tmp/sess_*", "createFile", 1, "temp name"},
			{"/tmp/tmp*", "createFile", 1, "temp name"},
			{"/tmp/tmp.*/x", "createFile", 2, "temp name"},
			{"/var/lib/app/*.tmp", "createFile", 1, "temp name"},
			{"/var/lib/tmpfiles/x", "createFile", 1, "exact path"},
		},
	}, {
		name:  "names with fixed digits stay",
		files: genCreate("/opt/app/lib/x86_64-linux-gnu/libfoo.so", "/opt/app/lib/ld-linux-x86-64.so"),
		want: []genRule{
			{"/opt/app/lib/ld-linux-x86-64.so", "createFile", 1, "exact path"},
			{"/opt/app/lib/x86_64-linux-gnu/libfoo.so", "createFile", 1, "exact path"},
		},
	}, {
		name:  "a directory with more than DirThreshold children becomes dir/**",
		files: genCreate(append(genNames("/var/cache/nginx", 21), "/var/cache/nginx/a/b/c", "/var/cache/nginx")...),
		want: []genRule{
			{"/var/cache/nginx", "createFile", 1, "exact path"},
			{"/var/cache/nginx/**", "createFile", 22, "/var/cache/nginx has 22 distinct children (more than 20)"},
		},
	}, {
		name:  "a directory at DirThreshold children stays listed",
		files: genCreate(genNames("/srv/data", 20)...),
		want: func() []genRule {
			var out []genRule
			for _, p := range genNames("/srv/data", 20) {
				out = append(out, genRule{p, "createFile", 1, "exact path"})
			}
			return out
		}(),
	}, {
		name:  "DirThreshold is configurable",
		opts:  GeneraliseOptions{DirThreshold: 2},
		files: genCreate("/srv/data/a", "/srv/data/b", "/srv/data/c"),
		want:  []genRule{{"/srv/data/**", "createFile", 3, "more than 2"}},
	}, {
		name: "roots and their ancestors are never generalised",
		files: genCreate(append(append(append(append(genNames("/etc", 25), genNames("/usr", 25)...), genNames("/usr/lib", 25)...),
			"/etc/123", "/1234", "/usr/bin/5f3e2d1c0b9a", "/usr/local/1"), genNames("/etc/ssl/certs", 25)...)...),
		want: func() []genRule {
			out := []genRule{{"/1234", "createFile", 1, "exact path"}, {"/etc/123", "createFile", 1, "exact path"}}
			for _, p := range genNames("/etc", 25) {
				out = append(out, genRule{p, "createFile", 1, "exact path (/etc has 27 distinct children but is a root or above one: kept one by one)"})
			}
			out = append(out, genRule{"/etc/ssl/certs/**", "createFile", 25, "more than 20"})
			for _, p := range genNames("/usr", 25) {
				out = append(out, genRule{p, "createFile", 1, "/usr has 28 distinct children but is a root or above one"})
			}
			out = append(out, genRule{"/usr/bin/5f3e2d1c0b9a", "createFile", 1, "exact path"})
			for _, p := range genNames("/usr/lib", 25) {
				out = append(out, genRule{p, "createFile", 1, "/usr/lib has 25 distinct children"})
			}
			out = append(out, genRule{"/usr/local/*", "createFile", 1, "number"})
			return out
		}(),
	}, {
		name:  "configured roots, and / always a root",
		opts:  GeneraliseOptions{Roots: []string{"/data"}, DirThreshold: 2},
		files: genCreate("/data/1", "/123", "/data/sub/1", "/a", "/b", "/c", "/etc/x/1"),
		want: []genRule{
			{"/123", "createFile", 1, "exact path"},
			{"/a", "createFile", 1, "exact path"},
			{"/b", "createFile", 1, "exact path"},
			{"/c", "createFile", 1, "exact path"},
			{"/data/1", "createFile", 1, "exact path"},
			{"/data/sub/*", "createFile", 1, "number"},
			{"/etc/x/*", "createFile", 1, "number"},
		},
	}, {
		name:  "glob metacharacters in names are escaped",
		files: genCreate(`/data/a*b[1].txt`, `/data/what?{x}`),
		want: []genRule{
			{`/data/a\*b\[*\].txt`, "createFile", 1, "number"},
			{`/data/what\?\{x\}`, "createFile", 1, "exact path"},
		},
	}, {
		name: "operations of one generalised path are one rule, in D4C order",
		files: []genFile{{"modifyFile", "/var/log/app/1.log"}, {"createFile", "/var/log/app/2.log"},
			{"deleteFile", "/var/log/app/2.log"}, {"createExecutable", "/opt/app/bin/tool"}},
		want: []genRule{
			{"/opt/app/bin/tool", "createExecutable", 1, "exact path"},
			{"/var/log/app/*.log", "createFile,modifyFile,deleteFile", 2, "number"},
		},
	}, {
		name:  "unknown operations and relative paths are dropped",
		files: []genFile{{"open", "/a/b"}, {"createFile", "relative/x"}, {"createFile", ""}, {"createFile", "/srv//x/"}},
		want:  []genRule{{"/srv/x", "createFile", 1, "exact path"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.workload == "" {
				tc.workload = "Deployment/web"
			}
			p := genProfile(tc.workload, tc.pods, tc.files...)
			prop := Generalise(p, tc.opts)
			if len(prop.Workloads) != 1 {
				t.Fatalf("got %d workloads, want 1", len(prop.Workloads))
			}
			got := prop.Workloads[0].File
			var gotS, wantS []string
			for _, r := range got {
				gotS = append(gotS, fmt.Sprintf("%s [%s] %d", r.Path, strings.Join(r.Operation, ","), r.Evidence.Distinct))
			}
			sort.Slice(tc.want, func(i, j int) bool { return tc.want[i].path < tc.want[j].path })
			for _, r := range tc.want {
				wantS = append(wantS, fmt.Sprintf("%s [%s] %d", r.path, r.ops, r.distinct))
			}
			if strings.Join(gotS, "\n") != strings.Join(wantS, "\n") {
				t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(gotS, "\n"), strings.Join(wantS, "\n"))
			}
			for i, r := range got {
				if !strings.Contains(r.Reason, tc.want[i].reason) {
					t.Errorf("%s: reason %q, want it to contain %q", r.Path, r.Reason, tc.want[i].reason)
				}
			}
			genCheckCovers(t, p, prop)
		})
	}
}

// genCheckCovers checks the invariants every proposal keeps: each
// observed file behaviour is allowed by a rule of its own workload with
// its operation; no pattern is `*`, `/*` or `/**`; every pattern
// compiles as the loader and matcher compile it.
func genCheckCovers(t *testing.T, p *Profile, prop *Proposal) {
	t.Helper()
	byKey := map[string]WorkloadRules{}
	globs := map[string]*glob.Pattern{}
	for _, w := range prop.Workloads {
		byKey[WorkloadKey(w.ID)] = w
		for _, r := range w.File {
			globs[r.Path], _ = glob.Compile(r.Path, '/')
			if r.Path == "*" || r.Path == "/*" || r.Path == "/**" || !strings.HasPrefix(r.Path, "/") {
				t.Errorf("forbidden pattern %q", r.Path)
			}
			if _, err := glob.Compile(r.Path, '/'); err != nil {
				t.Errorf("pattern %q does not compile: %v", r.Path, err)
			}
		}
	}
	for k, w := range p.Workloads {
		for _, b := range w.Behaviour {
			if b.Key.Kind != KindFile || !genUsablePath(b.Key.Path) || b.Key.Operation == "open" {
				continue
			}
			covered := false
			for _, r := range byKey[k].File {
				if g := globs[r.Path]; g != nil && g.Match(path.Clean(b.Key.Path)) && strings.Contains(strings.Join(r.Operation, ","), b.Key.Operation) {
					covered = true
				}
			}
			if !covered {
				t.Errorf("%s: %s %s is allowed by no rule of its workload", k, b.Key.Operation, b.Key.Path)
			}
		}
	}
}

func TestGeneraliseEvidenceIsMerged(t *testing.T) {
	p := genProfile("Deployment/web", nil)
	w := p.Workloads["shop/Deployment/web/app"]
	w.Behaviour = []Behaviour{
		{Key: Key{Kind: KindFile, Operation: "createFile", Path: "/var/log/app/1.log"},
			Evidence: Evidence{Count: 5, FirstSeen: genT0.Add(time.Hour), LastSeen: genT0.Add(2 * time.Hour), Pods: []string{"web-a-zzzzz", "web-a-bbbbb"}}},
		{Key: Key{Kind: KindFile, Operation: "modifyFile", Path: "/var/log/app/1.log"},
			Evidence: Evidence{Count: 7, FirstSeen: genT0, LastSeen: genT0.Add(time.Hour), Pods: []string{"web-a-ccccc"}}},
		{Key: Key{Kind: KindFile, Operation: "createFile", Path: "/var/log/app/2.log"},
			Evidence: Evidence{Count: 1, FirstSeen: genT0.Add(3 * time.Hour), LastSeen: genT0.Add(5 * time.Hour), Pods: []string{"web-a-aaaaa"}}},
	}
	prop := Generalise(p, GeneraliseOptions{})
	r := prop.Workloads[0].File[0]
	want := RuleEvidence{Evidence: Evidence{Count: 13, FirstSeen: genT0, LastSeen: genT0.Add(5 * time.Hour),
		Pods: []string{"web-a-aaaaa", "web-a-bbbbb", "web-a-ccccc"}}, Distinct: 2}
	if fmt.Sprint(r.Evidence) != fmt.Sprint(want) || r.Path != "/var/log/app/*.log" {
		t.Errorf("got %s %+v, want %+v", r.Path, r.Evidence, want)
	}
}

func TestGeneraliseProcessesStayExact(t *testing.T) {
	p := genProfile("Deployment/web", nil)
	w := p.Workloads["shop/Deployment/web/app"]
	ev := Evidence{Count: 2, FirstSeen: genT0, LastSeen: genT0.Add(time.Hour), Pods: []string{"web-7f9c5d6b8-abcde"}}
	for _, k := range []Key{
		{Kind: KindProcess, Operation: "exec", Path: "/usr/sbin/nginx", ProcessName: "nginx"},
		{Kind: KindProcess, Operation: "fork", Path: "/usr/sbin/nginx", ProcessName: "nginx"},
		{Kind: KindProcess, Operation: "exec", Path: "/bin/sh", ProcessName: "sh"},
		{Kind: KindProcess, Operation: "exec", Path: "/bin/sh", ProcessName: "sh", Interactive: true},
		{Kind: KindProcess, Operation: "exec", Path: "/tmp/1234/run-3f2a9c1d0b7e", ProcessName: "run"},
		{Kind: KindProcess, Operation: "fork", Path: "/app/worker", ProcessName: "worker"},
		{Kind: KindProcess, Operation: "exec", Path: "", ProcessName: "ghost"},
		{Kind: KindProcess, Operation: "ptrace", Path: "/app/x"},
	} {
		w.Behaviour = append(w.Behaviour, Behaviour{Key: k, Evidence: ev})
	}
	prop := Generalise(p, GeneraliseOptions{})
	var got []string
	for _, r := range prop.Workloads[0].Process {
		inter := "any"
		if r.Interactive != nil {
			inter = fmt.Sprint(*r.Interactive)
		}
		got = append(got, fmt.Sprintf("%s %s %d | %s", r.Executable, inter, r.Evidence.Count, r.Reason))
	}
	want := []string{
		"/app/worker false 2 | exact executable, only seen outside interactive sessions (seen forking only)",
		"/bin/sh any 4 | exact executable, also seen in an interactive session: allowed interactive or not",
		"/tmp/1234/run-3f2a9c1d0b7e false 2 | exact executable, only seen outside interactive sessions",
		"/usr/sbin/nginx false 4 | exact executable, only seen outside interactive sessions",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestGeneraliseNeverMergesWorkloads: two workloads that each write 15
// files in /data keep their own rules, and the 30 children together do
// not make either widen to /data/**; what one ran does not appear in the
// other's rules.
func TestGeneraliseNeverMergesWorkloads(t *testing.T) {
	a := genProfile("Deployment/web", nil, genCreate(genNames("/data", 15)...)...)
	b := genProfile("Deployment/api", []string{"api-5d6b8c9f7-qwert"}, genCreate(genNames("/data/api", 15)...)...)
	for k, w := range b.Workloads {
		w.Behaviour = append(w.Behaviour, Behaviour{Key: Key{Kind: KindProcess, Operation: "exec", Path: "/app/api"}, Evidence: Evidence{Count: 1}})
		a.Workloads[k] = w
	}
	// The same namespace and workload, another container: its own entry.
	c := genProfile("Deployment/web", nil, genCreate(genNames("/data", 15)...)...)
	for k, w := range c.Workloads {
		w.ID.Container = "sidecar"
		a.Workloads[k+"-sidecar"] = w
	}
	prop := Generalise(a, GeneraliseOptions{})
	if len(prop.Workloads) != 3 {
		t.Fatalf("got %d workloads, want 3", len(prop.Workloads))
	}
	for _, w := range prop.Workloads {
		if len(w.File) != 15 {
			t.Errorf("%s/%s: %d file rules, want 15 (no merge, no widening)", w.ID.Workload, w.ID.Container, len(w.File))
		}
		for _, r := range w.File {
			if strings.HasSuffix(r.Path, "**") {
				t.Errorf("%s: widened to %s", w.ID.Workload, r.Path)
			}
		}
		if (w.ID.Workload == "Deployment/api") != (len(w.Process) == 1) {
			t.Errorf("%s: process rules %+v", w.ID.Workload, w.Process)
		}
	}
	if got := []string{prop.Workloads[0].ID.Workload, prop.Workloads[1].ID.Workload + "/" + prop.Workloads[1].ID.Container, prop.Workloads[2].ID.Container}; fmt.Sprint(got) != "[Deployment/api Deployment/web/app sidecar]" {
		t.Errorf("order %v", got)
	}
}

// TestGeneraliseIsDeterministic renders a profile many times, its
// behaviours shuffled and its workloads inserted in another order each
// time: the learned file is byte-identical.
func TestGeneraliseIsDeterministic(t *testing.T) {
	base := genRandomProfile(rand.New(rand.NewSource(1)), 4, 300)
	want, err := RenderLearned(Generalise(base, GeneraliseOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		rng := rand.New(rand.NewSource(int64(i) + 100))
		p := &Profile{Ruleset: base.Ruleset, LastNew: base.LastNew, Workloads: map[string]*WorkloadProfile{}}
		keys := make([]string, 0, len(base.Workloads))
		for k := range base.Workloads {
			keys = append(keys, k)
		}
		rng.Shuffle(len(keys), func(a, b int) { keys[a], keys[b] = keys[b], keys[a] })
		for _, k := range keys {
			w := *base.Workloads[k]
			w.Behaviour = append([]Behaviour(nil), w.Behaviour...)
			rng.Shuffle(len(w.Behaviour), func(a, b int) { w.Behaviour[a], w.Behaviour[b] = w.Behaviour[b], w.Behaviour[a] })
			p.Workloads[k] = &w
		}
		got, err := RenderLearned(Generalise(p, GeneraliseOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("run %d differs from the first", i)
		}
	}
	if len(want) < 1000 {
		t.Fatalf("the random profile rendered only %d bytes", len(want))
	}
}

// TestGeneraliseCoversEverything: on random profiles, every observed
// file behaviour is allowed by a rule of its own workload, and no
// forbidden pattern appears.
func TestGeneraliseCoversEverything(t *testing.T) {
	for seed := int64(0); seed < 20; seed++ {
		p := genRandomProfile(rand.New(rand.NewSource(seed)), 3, 200)
		genCheckCovers(t, p, Generalise(p, GeneraliseOptions{DirThreshold: int(seed%5) + 1}))
	}
}

// genRandomProfile makes workloads with paths built from fixed, numeric,
// hex, uuid, pod and temp segments, some with glob metacharacters.
func genRandomProfile(rng *rand.Rand, workloads, behaviours int) *Profile {
	p := &Profile{Ruleset: "shop_runtime", Workloads: map[string]*WorkloadProfile{}, LastNew: genT0}
	ops := []string{"createFile", "modifyFile", "deleteFile", "createExecutable", "modifyExecutable"}
	for wi := range workloads {
		name := fmt.Sprintf("svc%d", wi)
		pods := []string{fmt.Sprintf("%s-6d8f9c7b5-%05d", name, rng.Intn(99999)), fmt.Sprintf("%s-6d8f9c7b5-x%04d", name, rng.Intn(9999))}
		id := WorkloadID{Namespace: "ns" + fmt.Sprint(wi%2), Workload: "Deployment/" + name, Container: "app", Image: "registry.example/" + name}
		w := &WorkloadProfile{ID: id}
		seen := map[Key]bool{}
		for range behaviours {
			segs := []string{[]string{"var", "etc", "tmp", "usr", "data", "proc"}[rng.Intn(6)]}
			for d := rng.Intn(4); d >= 0; d-- {
				switch rng.Intn(8) {
				case 0:
					segs = append(segs, fmt.Sprint(rng.Intn(1000)))
				case 1:
					segs = append(segs, fmt.Sprintf("%012x", rng.Int63()))
				case 2:
					segs = append(segs, pods[rng.Intn(2)]+".log")
				case 3:
					segs = append(segs, fmt.Sprintf("tmp.%c%dQz%d", 'a'+rng.Intn(26), rng.Intn(100), rng.Intn(100)))
				case 4:
					segs = append(segs, fmt.Sprintf("f[%d]*?", rng.Intn(3)))
				case 5:
					segs = append(segs, "lib", "bin")
				default:
					segs = append(segs, []string{"cache", "log", "conf", "app", "run"}[rng.Intn(5)]+fmt.Sprint(rng.Intn(40)))
				}
			}
			k := Key{Kind: KindFile, Operation: ops[rng.Intn(len(ops))], Path: "/" + strings.Join(segs, "/")}
			if rng.Intn(5) == 0 {
				k = Key{Kind: KindProcess, Operation: "exec", Path: "/usr/bin/" + fmt.Sprint(rng.Intn(30)), Interactive: rng.Intn(4) == 0}
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			first := genT0.Add(time.Duration(rng.Intn(3600)) * time.Second)
			w.Behaviour = append(w.Behaviour, Behaviour{Key: k, Evidence: Evidence{
				Count: uint64(1 + rng.Intn(100)), FirstSeen: first, LastSeen: first.Add(time.Duration(rng.Intn(3600)) * time.Second),
				Pods: []string{pods[rng.Intn(2)]}}})
		}
		p.Workloads[WorkloadKey(id)] = w
	}
	return p
}

func TestGeneraliseSections(t *testing.T) {
	p := genProfile("Deployment/web", nil, genCreate("/srv/x")...)
	w := p.Workloads["shop/Deployment/web/app"]
	w.Behaviour = append(w.Behaviour,
		Behaviour{Key: Key{Kind: KindProcess, Operation: "exec", Path: "/app/x"}, Evidence: Evidence{Count: 1}},
		Behaviour{Key: Key{Kind: KindProcess, Operation: "exec", Path: "/app/never"}, Evidence: Evidence{Count: 0}})
	for _, tc := range []struct {
		sections    []string
		process     int
		file        int
		inWorkloads int
	}{{nil, 1, 1, 1}, {[]string{KindFile}, 0, 1, 1}, {[]string{KindProcess}, 1, 0, 1}, {[]string{}, 0, 0, 0}} {
		prop := Generalise(p, GeneraliseOptions{Sections: tc.sections})
		if len(prop.Workloads) != tc.inWorkloads {
			t.Errorf("sections %v: %d workloads", tc.sections, len(prop.Workloads))
			continue
		}
		if tc.inWorkloads == 1 && (len(prop.Workloads[0].Process) != tc.process || len(prop.Workloads[0].File) != tc.file) {
			t.Errorf("sections %v: %+v", tc.sections, prop.Workloads[0])
		}
	}
}

func TestStable(t *testing.T) {
	p := genProfile("Deployment/web", nil, genCreate("/a/b")...)
	empty := &Profile{Ruleset: "x", LastNew: genT0}
	for _, tc := range []struct {
		name  string
		p     *Profile
		now   time.Time
		quiet time.Duration
		want  bool
	}{
		{"quiet period not over", p, genT0.Add(23 * time.Hour), 0, false},
		{"default quiet period is 24h", p, genT0.Add(24 * time.Hour), 0, true},
		{"configured quiet period", p, genT0.Add(time.Hour), time.Hour, true},
		{"configured quiet period not over", p, genT0.Add(time.Hour - time.Second), time.Hour, false},
		{"no behaviour is never stable", empty, genT0.Add(48 * time.Hour), 0, false},
		{"nil profile", nil, genT0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Stable(tc.p, tc.now, tc.quiet); got != tc.want {
				t.Errorf("Stable = %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzGeneralise: for any set of observed paths (one per line), every
// observed behaviour is allowed by its workload's rules, no forbidden
// pattern appears, and the learned file reads back with the same paths.
func FuzzGeneralise(f *testing.F) {
	f.Add("/proc/1234/status\n/var/cache/app/3f2a9c1d0b7e/data\n/tmp/tmp.aB3dE5fG7h/x", uint8(20))
	f.Add("/data/a*b[1].txt\n/data/what?{x}\n/etc/123\n/1234", uint8(1))
	f.Add("/data/web-7f9c5d6b8-abcde/out.log\n/x/\"quoted\": y, [z]\n/a/#b", uint8(2))
	f.Fuzz(func(t *testing.T, lines string, threshold uint8) {
		var files []genFile
		for i, l := range strings.Split(lines, "\n") {
			if i == 50 {
				break
			}
			files = append(files, genFile{genFileOps[i%len(genFileOps)], l})
		}
		p := genProfile("Deployment/web", nil, files...)
		prop := Generalise(p, GeneraliseOptions{DirThreshold: int(threshold)})
		genCheckCovers(t, p, prop)
		out, err := RenderLearned(prop)
		if err != nil {
			t.Fatal(err)
		}
		var back renderLearnedFile
		if err := yaml.Unmarshal(out, &back); err != nil {
			t.Fatalf("rendered file does not decode: %v\n%s", err, out)
		}
		for i, w := range prop.Workloads {
			for k, r := range w.File {
				if got := back.Spec.Workloads[i].File[k].Path; got != r.Path {
					t.Errorf("path %q reads back as %q", r.Path, got)
				}
			}
		}
	})
}

// BenchmarkGeneraliseAndRender: a profile of 4 workloads with 2500
// behaviours each, generalised and rendered.
func BenchmarkGeneraliseAndRender(b *testing.B) {
	p := genRandomProfile(rand.New(rand.NewSource(7)), 4, 2500)
	n := 0
	for _, w := range p.Workloads {
		n += len(w.Behaviour)
	}
	b.ReportMetric(float64(n), "behaviours")
	for b.Loop() {
		if _, err := RenderLearned(Generalise(p, GeneraliseOptions{})); err != nil {
			b.Fatal(err)
		}
	}
}

func TestGeneraliseRecordsItsSettings(t *testing.T) {
	p := genProfile("Deployment/web", nil, genCreate("/srv/x")...)
	prop := Generalise(p, GeneraliseOptions{Roots: []string{"/data/", "/data", "srv"}, DirThreshold: 7})
	if fmt.Sprint(prop.Roots) != "[/ /data /srv]" || prop.DirThreshold != 7 {
		t.Errorf("Roots %v, DirThreshold %d", prop.Roots, prop.DirThreshold)
	}
	if prop := Generalise(p, GeneraliseOptions{}); fmt.Sprint(prop.Roots) != fmt.Sprint(DefaultRoots) || prop.DirThreshold != DefaultDirThreshold {
		t.Errorf("defaults: Roots %v, DirThreshold %d", prop.Roots, prop.DirThreshold)
	}
	// /srv is a root now: its child stays exact even when variable.
	if got := Generalise(genProfile("Deployment/web", nil, genCreate("/srv/123")...), GeneraliseOptions{Roots: []string{"/srv"}}).Workloads[0].File[0].Path; got != "/srv/123" {
		t.Errorf("child of a configured root became %s", got)
	}
}

func ExampleGeneralise() {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	id := WorkloadID{Namespace: "shop", Workload: "Deployment/web", Container: "app", Image: "registry.example/shop/web"}
	seen := func(kind, op, p string, interactive bool) Behaviour {
		return Behaviour{Key: Key{Kind: kind, Operation: op, Path: p, Interactive: interactive},
			Evidence: Evidence{Count: 10, FirstSeen: t0, LastSeen: t0.Add(time.Hour), Pods: []string{"web-7f9c5d6b8-abcde"}}}
	}
	w := &WorkloadProfile{ID: id, Behaviour: []Behaviour{
		seen(KindProcess, "exec", "/usr/sbin/nginx", false),
		seen(KindFile, "createFile", "/var/log/nginx/web-7f9c5d6b8-abcde.log", false),
		seen(KindFile, "modifyFile", "/proc/1234/oom_score_adj", false),
		seen(KindFile, "modifyFile", "/proc/987/oom_score_adj", false),
	}}
	prop := Generalise(&Profile{Ruleset: "shop_runtime", Workloads: map[string]*WorkloadProfile{WorkloadKey(id): w}}, GeneraliseOptions{})
	for _, r := range prop.Workloads[0].Process {
		fmt.Printf("%s  (%s)\n", r.Executable, r.Reason)
	}
	for _, r := range prop.Workloads[0].File {
		fmt.Printf("%s %v  (%s)\n", r.Path, r.Operation, r.Reason)
	}
	// Output:
	// /usr/sbin/nginx  (exact executable, only seen outside interactive sessions)
	// /proc/*/oom_score_adj [modifyFile]  (2 paths differ only in number parts)
	// /var/log/nginx/web-*.log [createFile]  (1 path with a variable pod name part made *)
}
