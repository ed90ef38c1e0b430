package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-dev/palisade/learning/service"
	"github.com/palisade-dev/palisade/test/cluster"
	"github.com/palisade-dev/palisade/test/gitea"
	"github.com/palisade-dev/palisade/test/runtime"
)

// The learning test's policy: one ruleset that, once out of learning,
// alerts on and blocks every exec and every file change in the shop
// namespace — except what its learned rules allow.
const learnCluster = `apiVersion: palisade.dev/v1alpha1
kind: Policy
metadata: {name: prod}
spec:
  clusters: [prod]
  clusterWide:
    runtime: {rulesets: [shop_runtime]}
`

const learnRuleset = `# The shop's containers run what they ran while learning, nothing else.
apiVersion: palisade.dev/v1alpha1
kind: RuntimeRuleset
metadata: {name: shop_runtime}
spec:
  mode: learning
  process:
    selectors:
      - {name: any_exec, operation: [exec], kubernetesNamespace: [NAMESPACE]}
    responses:
      - {match: [any_exec], actions: [alert, block]}
  file:
    selectors:
      - name: any_change
        operation: [createFile, modifyFile, deleteFile, createExecutable, modifyExecutable]
        targetFilePath: [/**]
        kubernetesNamespace: [NAMESPACE]
    responses:
      - {match: [any_change], actions: [alert, block]}
`

// normalScript is the workload's normal behaviour: its own binary
// (/app/busybox: busybox, in its own place) runs its shell, lists its
// data, writes 25 cache items and a lock file.
const normalScript = `for i in $(/app/busybox seq 1 25); do echo "item $i" > /var/cache/app/item-$i.dat; done
/app/busybox ls /var/cache/app > /dev/null
echo $$ > /tmp/worker.lock
/app/busybox rm /tmp/worker.lock`

// sensorProc is a running `palisade sensor`.
type sensorProc struct {
	url, alerts string
	out         *syncBuffer
	stop        func()
}

// TestLearningEndToEnd is issue 7's acceptance: a real container under
// the real sensor learns in mode learning; `palisade learn propose`
// opens a pull request on a real Gitea; proposing again updates it; a
// declined proposal is not reopened; a controller restart loses no
// observation; after the merge the normal behaviour raises no alert and
// drift alerts (audit), and after a second, human pull request sets
// enforce, drift is blocked.
func TestLearningEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the sensor loads BPF programs and runc needs root: run as root")
	}
	const node = "learn-node"
	dir := t.TempDir()
	forge := gitea.Start(t)
	repo := forge.CreateRepo(t, "policy")

	c := cluster.Start(t)
	kube, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	nsObj, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "shop-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns := nsObj.Name
	forge.Push(t, repo, "main", "main", map[string]string{
		"clusters/prod.yaml": learnCluster,
		"rulesets/shop.yaml": strings.ReplaceAll(learnRuleset, "NAMESPACE", ns),
		"learned/README.md":  "Rules proposed by learning pull requests.\n",
	})

	// The workload: a Deployment's pod (owned by its ReplicaSet) whose
	// container runs in runc, with its own binary at /app/busybox.
	pod, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-5d8f7b9c6-x2x7q", Namespace: ns,
			Labels: map[string]string{"app": "web", "pod-template-hash": "5d8f7b9c6"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d8f7b9c6",
				UID: types.UID("0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"), Controller: ptr(true)}},
		},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.example/shop/web:1.0"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctr := runtime.Start(t, runtime.Options{PodUID: string(pod.UID)})
	prepareRootfs(t, ctr.Rootfs())
	pod.Status.Phase = corev1.PodRunning
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", ContainerID: ctr.ContainerID(),
		Image:   "registry.example/shop/web:1.0",
		ImageID: "registry.example/shop/web@sha256:" + strings.Repeat("ab", 32),
		State:   corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	if _, err := kube.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The controller follows the Gitea repository and learns.
	const adminToken, sensorToken = "learn-admin-t0ken", "learn-sensor-t0ken"
	learnDir := filepath.Join(dir, "learning")
	ctrlArgs := []string{
		"--repo", repo.CloneURL, "--git-username", forge.Username, "--git-password-file", forge.TokenFile(t),
		"--interval", "1s", "--workdir", filepath.Join(dir, "work"),
		"--token-file", writeFile(t, dir, "bundle-token", bundleToken),
		"--learning-dir", learnDir,
		"--learning-token-file", writeFile(t, dir, "admin-token", adminToken),
		"--learning-sensor-token-file", writeFile(t, dir, "sensor-token", sensorToken),
		"--learning-check-every", "0",
		"--forge", "gitea", "--forge-url", forge.URL, "--forge-repo", repo.FullName(), "--forge-token-file", forge.TokenFile(t),
	}
	ctrl := startController(t, ctrlArgs...)
	waitFor(t, 60*time.Second, "first bundle", func() bool { return ctrl.status(t).Clusters["prod"].Revision != "" })

	sens := startSensor(t, dir, node, c.Kubeconfig, ctrl.URL, sensorToken)
	rev := func() string { return ctrl.status(t).Clusters["prod"].Revision }
	sens.waitRevision(t, rev())
	waitFor(t, 30*time.Second, "sensor watches the container", func() bool { return sens.watches(t, ctr.ID()) })

	// Learning: the normal behaviour, twice (creating, then rewriting
	// the cache items). Nothing alerts and nothing is blocked.
	alertsBefore := sens.alertCount(t)
	for range 2 {
		runNormal(t, ctr)
	}
	learned := waitProfile(t, ctrl.URL, adminToken, func(s service.RulesetStatus) bool { return s.Behaviours >= 4 })
	t.Logf("learning: %d workloads, %d behaviours", learned.Workloads, learned.Behaviours)
	if n := sens.alertCount(t) - alertsBefore; n != 0 {
		t.Fatalf("learning mode raised %d alerts", n)
	}

	// A controller restart in the middle of learning loses nothing: the
	// sensor keeps what the controller could not take and resends it.
	// The count is read once every batch of the learning runs is in:
	// waitProfile only waited for the first behaviours.
	before := settledCount(t, ctrl.URL, adminToken, "exec", "/app/busybox")
	ctrl.Stop()
	const downExecs = 5
	for range downExecs {
		if _, stderr, code := ctr.Exec(t, "/app/busybox", "true"); code != 0 {
			t.Fatalf("exec while the controller is down: %d %s", code, stderr)
		}
	}
	time.Sleep(2 * time.Second) // several send intervals fail meanwhile
	ctrl = startControllerAt(t, ctrl.Addr, ctrlArgs...)
	waitFor(t, 60*time.Second, "observations resent after the restart", func() bool {
		return behaviourCount(t, ctrl.URL, adminToken, "exec", "/app/busybox") >= before+downExecs
	})
	if got := behaviourCount(t, ctrl.URL, adminToken, "exec", "/app/busybox"); got != before+downExecs {
		t.Errorf("exec /app/busybox counted %d after the restart, want %d + %d", got, before, downExecs)
	}
	waitFor(t, 60*time.Second, "controller serves the policy again", func() bool { return rev() != "" })

	// Propose: a pull request with the learned rules and evidence.
	out := learn(t, ctrl.URL, adminToken, "propose", "shop_runtime")
	t.Logf("propose: %s", out)
	prs := forge.PullRequests(t, repo)
	if len(prs) != 1 || !strings.Contains(out, "created") {
		t.Fatalf("after propose: %d pull requests, output %q", len(prs), out)
	}
	first := prs[0]
	if !strings.Contains(first.Body, "/app/busybox") || !strings.Contains(first.Body, "audit") {
		t.Errorf("pull request body lacks the rules or the mode change:\n%s", first.Body)
	}
	file, err := forge.ReadFile(repo, "palisade/learn/shop_runtime", "learned/shop_runtime.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("learned/shop_runtime.yaml:\n%s", file)
	for _, want := range []string{"kind: LearnedRules", "workload: Deployment/web", "executable: /app/busybox", "/var/cache/app/"} {
		if !strings.Contains(string(file), want) {
			t.Errorf("learned file lacks %q", want)
		}
	}

	// palisade learn status names the mode, the profile and the PR.
	status := learn(t, ctrl.URL, adminToken, "status")
	t.Logf("learn status:\n%s", status)
	if !strings.Contains(status, "shop_runtime") || !strings.Contains(status, "learning") || !strings.Contains(status, first.URL) {
		t.Errorf("learn status lacks the ruleset, its mode or its pull request:\n%s", status)
	}

	// Proposing twice updates the same pull request.
	if _, stderr, code := ctr.Exec(t, "/app/busybox", "sh", "-c", "echo 1 > /var/cache/app/extra.idx"); code != 0 {
		t.Fatalf("extra behaviour: %s", stderr)
	}
	waitFor(t, 30*time.Second, "the new behaviour reaches the profile", func() bool {
		return behaviourCount(t, ctrl.URL, adminToken, "createFile", "/var/cache/app/extra.idx") > 0
	})
	out = learn(t, ctrl.URL, adminToken, "propose", "shop_runtime")
	if prs = forge.PullRequests(t, repo); len(prs) != 1 || !strings.Contains(out, "updated") || !strings.Contains(out, fmt.Sprintf("#%d", first.Number)) {
		t.Fatalf("second propose: %q, %d pull requests", out, len(prs))
	}

	// A declined pull request is not reopened with the same content.
	forge.ClosePR(t, repo, first.Number)
	out = learn(t, ctrl.URL, adminToken, "propose", "shop_runtime")
	if prs = forge.PullRequests(t, repo); len(prs) != 1 || !strings.Contains(out, "declined") {
		t.Fatalf("propose after decline: %q, %d pull requests", out, len(prs))
	}

	// New behaviour makes new content: a new pull request, merged.
	if _, stderr, code := ctr.Exec(t, "/app/busybox", "sh", "-c", "echo 2 > /var/cache/app/extra.idx"); code != 0 {
		t.Fatalf("extra behaviour: %s", stderr)
	}
	waitFor(t, 30*time.Second, "the modification reaches the profile", func() bool {
		return behaviourCount(t, ctrl.URL, adminToken, "modifyFile", "/var/cache/app/extra.idx") > 0
	})
	out = learn(t, ctrl.URL, adminToken, "propose", "shop_runtime")
	prs = forge.PullRequests(t, repo)
	if len(prs) != 2 || !strings.Contains(out, "created") {
		t.Fatalf("propose with new content: %q, %d pull requests", out, len(prs))
	}
	second := prs[0]
	if second.Number == first.Number {
		second = prs[1]
	}
	forge.MergePR(t, repo, second.Number)
	merged, err := forge.BranchCommit(repo, "main")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the merge is reconciled", func() bool { return rev() == merged })
	sens.waitRevision(t, merged)

	// Audit: the normal behaviour raises no alert; drift alerts and runs.
	mark := sens.alertCount(t)
	runNormal(t, ctr)
	time.Sleep(time.Second) // the sensor's reader delivers within its deadline
	if n := sens.alertCount(t) - mark; n != 0 {
		t.Fatalf("false alerts on a replay of the normal behaviour: %d\n%s", n, sens.alertsSince(t, mark))
	}
	mark = sens.alertCount(t)
	drift := runDrift(t, ctr)
	for what, code := range drift {
		if code != 0 {
			t.Errorf("audit mode blocked %s (exit %d)", what, code)
		}
	}
	waitFor(t, 10*time.Second, "drift alerts", func() bool { return driftAlerts(sens.alertsSince(t, mark)) == 3 })
	for _, l := range sens.alertsSince(t, mark) {
		t.Logf("audit alert: %s %s (process %s, actions %v)", l["operation"], l["path"], l["process"], l["actions"])
	}

	// The second, human change: enforce.
	rulesetNow, err := forge.ReadFile(repo, "main", "rulesets/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rulesetNow), "mode: audit") {
		t.Fatalf("the merged proposal did not set audit:\n%s", rulesetNow)
	}
	forge.Push(t, repo, "main", "enforce-shop", map[string]string{
		"rulesets/shop.yaml": strings.Replace(string(rulesetNow), "mode: audit", "mode: enforce", 1),
	})
	var opened struct{ Number int }
	if err := forge.API("POST", "/repos/"+repo.FullName()+"/pulls",
		map[string]string{"base": "main", "head": "enforce-shop", "title": "Enforce shop_runtime"}, &opened); err != nil {
		t.Fatal(err)
	}
	forge.MergePR(t, repo, opened.Number)
	merged, err = forge.BranchCommit(repo, "main")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the enforce merge is reconciled", func() bool { return rev() == merged })
	sens.waitRevision(t, merged)

	// Enforce: the normal behaviour runs and raises nothing; drift fails.
	mark = sens.alertCount(t)
	runNormal(t, ctr)
	time.Sleep(time.Second)
	if n := sens.alertCount(t) - mark; n != 0 {
		t.Fatalf("false alerts in enforce: %d\n%s", n, sens.alertsSince(t, mark))
	}
	drift = runDrift(t, ctr)
	for what, code := range drift {
		if code == 0 {
			t.Errorf("enforce mode did not block %s", what)
		}
	}
	t.Logf("drift in enforce: %v", drift)
}

func ptr[T any](v T) *T { return &v }

// prepareRootfs gives the container its own binary and data directory,
// and a configuration file under /etc, from the host side (not an event
// of the container).
func prepareRootfs(t *testing.T, root string) {
	t.Helper()
	bb, err := os.ReadFile(filepath.Join(root, "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"app", "var/cache/app"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "app", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "shop.conf"), []byte("listen 8080\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runNormal(t *testing.T, ctr *runtime.Container) {
	t.Helper()
	if _, stderr, code := ctr.Exec(t, "/app/busybox", "sh", "-c", normalScript); code != 0 {
		t.Fatalf("normal behaviour failed (%d): %s", code, stderr)
	}
}

// runDrift runs the drifts and returns their exit codes: a new
// executable written and run, a written executable run, a shell spawned,
// a write under /etc.
func runDrift(t *testing.T, ctr *runtime.Container) map[string]int {
	t.Helper()
	codes := map[string]int{}
	for _, d := range []struct {
		what string
		args []string
	}{
		{"new executable", []string{"/app/busybox", "sh", "-c", "/app/busybox mkdir -p /tmp/drop && /app/busybox cp /app/busybox /tmp/drop/busybox && /tmp/drop/busybox true"}},
		// In enforce the copy above is refused: the copy audit mode let
		// through is run instead.
		{"run a written executable", []string{"/app/busybox", "sh", "-c", "/tmp/drop/busybox true"}},
		{"shell", []string{"/bin/sh", "-c", "true"}},
		{"write under /etc", []string{"/app/busybox", "sh", "-c", "echo 'listen 0.0.0.0:22' >> /etc/shop.conf"}},
	} {
		_, stderr, code := ctr.Exec(t, d.args...)
		codes[d.what] = code
		t.Logf("drift %q: exit %d %s", d.what, code, strings.TrimSpace(stderr))
	}
	return codes
}

// driftAlerts counts the drifts among alert lines: the dropper (its
// creation or its exec), the shell, the /etc write.
func driftAlerts(lines []map[string]any) int {
	seen := map[string]bool{}
	for _, l := range lines {
		p, _ := l["path"].(string)
		op, _ := l["operation"].(string)
		switch {
		case p == "/tmp/drop/busybox":
			seen["dropper"] = true
		case op == "exec" && p == "/bin/busybox":
			seen["shell"] = true
		case strings.HasPrefix(p, "/etc/"):
			seen["etc"] = true
		}
	}
	return len(seen)
}

// startSensor runs `palisade sensor` against the controller's bundle and
// learning endpoint.
func startSensor(t *testing.T, dir, node, kubeconfig, ctrlURL, token string) *sensorProc {
	t.Helper()
	addr := freeAddr(t)
	s := &sensorProc{url: "http://" + addr, alerts: filepath.Join(dir, "alerts.jsonl"), out: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, palisadeBin, "sensor", "--node-name", node, "--kubeconfig", kubeconfig,
		"--bundle-url", ctrlURL+"/bundles/prod.tar.gz", "--bundle-token-file", writeFile(t, dir, "sensor-bundle-token", bundleToken),
		"--listen", addr, "--alerts-file", s.alerts, "--observations-file", filepath.Join(dir, "observations.jsonl"),
		"--learning-url", ctrlURL, "--learning-token-file", writeFile(t, dir, "sensor-learning-token", token),
		"--learning-interval", "300ms")
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.stop = func() { cancel(); <-done }
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("sensor output:\n%s", s.out)
		}
	})
	waitFor(t, 60*time.Second, "sensor /readyz", func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

func (s *sensorProc) status(t *testing.T) map[string]any {
	t.Helper()
	resp, err := http.Get(s.url + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (s *sensorProc) waitRevision(t *testing.T, rev string) {
	t.Helper()
	waitFor(t, 60*time.Second, "sensor runs revision "+rev, func() bool {
		r, _ := s.status(t)["revision"].(string)
		return r == rev
	})
}

func (s *sensorProc) watches(t *testing.T, containerID string) bool {
	t.Helper()
	raw, _ := json.Marshal(s.status(t))
	return strings.Contains(string(raw), containerID)
}

func (s *sensorProc) alertLines(t *testing.T) []map[string]any {
	t.Helper()
	f, err := os.Open(s.alerts)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l map[string]any
		if json.Unmarshal(sc.Bytes(), &l) == nil && l["stream"] == "alert" {
			out = append(out, l)
		}
	}
	return out
}

func (s *sensorProc) alertCount(t *testing.T) int { return len(s.alertLines(t)) }

func (s *sensorProc) alertsSince(t *testing.T, mark int) []map[string]any {
	return s.alertLines(t)[mark:]
}

// learn runs `palisade learn` against the controller.
func learn(t *testing.T, url, token string, args ...string) string {
	t.Helper()
	tok := writeFile(t, t.TempDir(), "token", token)
	out, err := exec.Command(palisadeBin, append([]string{"learn", "--controller", url, "--token-file", tok}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("palisade learn %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func learnStatus(t *testing.T, url, token string) []service.RulesetStatus {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/learning/v1/rulesets", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil // the controller may be restarting
	}
	defer resp.Body.Close()
	var st []service.RulesetStatus
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return st
}

func waitProfile(t *testing.T, url, token string, cond func(service.RulesetStatus) bool) service.RulesetStatus {
	t.Helper()
	var got service.RulesetStatus
	waitFor(t, 60*time.Second, "learning profile", func() bool {
		for _, s := range learnStatus(t, url, token) {
			if s.Ruleset == "shop_runtime" && cond(s) {
				got = s
				return true
			}
		}
		return false
	})
	return got
}

// settledCount is behaviourCount once it has stayed the same for five
// of the sensor's send intervals (300 ms): every observation made so far
// has arrived.
func settledCount(t *testing.T, url, token, op, path string) uint64 {
	t.Helper()
	last, same := behaviourCount(t, url, token, op, path), 0
	waitFor(t, 30*time.Second, "learning observations settle", func() bool {
		time.Sleep(300 * time.Millisecond)
		n := behaviourCount(t, url, token, op, path)
		if n == last && n > 0 {
			same++
		} else {
			last, same = n, 0
		}
		return same >= 5
	})
	return last
}

// behaviourCount is the count of one behaviour in shop_runtime's profile
// (GET /learning/v1/status, the sensors' view), 0 when absent.
func behaviourCount(t *testing.T, url, token, op, path string) uint64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/learning/v1/profiles/shop_runtime", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p struct {
		Workloads map[string]struct {
			Behaviour []struct {
				Key      struct{ Operation, Path string }
				Evidence struct{ Count uint64 }
			}
		}
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &p) != nil {
		return 0
	}
	var n uint64
	for _, w := range p.Workloads {
		for _, b := range w.Behaviour {
			if b.Key.Operation == op && b.Key.Path == path {
				n += b.Evidence.Count
			}
		}
	}
	return n
}
