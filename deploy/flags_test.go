package deploy_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// buildTimeout bounds building cmd/palisade: seconds with a warm build
// cache (make test builds it too), about a minute cold.
const buildTimeout = 5 * time.Minute

// buildPalisade builds the palisade command into dir.
func buildPalisade(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "palisade")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/palisade").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/palisade: %v\n%s", err, out)
	}
	return bin
}

// flagPattern finds the long flags in a cobra help text.
var flagPattern = regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[a-z0-9-]+)`)

// TestFlagsExist: every flag the chart passes is a flag of the
// subcommand it is passed to, in every variation. A renamed flag would
// otherwise only show as a crash-looping pod.
func TestFlagsExist(t *testing.T) {
	bin := buildPalisade(t, t.TempDir())
	known := map[string]map[string]bool{} // subcommand -> flags
	for _, v := range variations {
		objs := decodeObjects(t, render(t, v.set...))
		var workloads []appsv1.Deployment
		for _, u := range find(objs, "Deployment", "") {
			var d appsv1.Deployment
			decodeInto(t, u, &d)
			workloads = append(workloads, d)
		}
		// The sensor DaemonSet's pod template is checked the same way.
		for _, u := range find(objs, "DaemonSet", "") {
			var ds appsv1.DaemonSet
			decodeInto(t, u, &ds)
			workloads = append(workloads, appsv1.Deployment{ObjectMeta: ds.ObjectMeta, Spec: appsv1.DeploymentSpec{Template: ds.Spec.Template}})
		}
		for _, d := range workloads {
			for _, c := range d.Spec.Template.Spec.Containers {
				if len(c.Args) == 0 || strings.HasPrefix(c.Args[0], "-") {
					t.Fatalf("%s/%s: args %v do not start with a subcommand", d.Name, c.Name, c.Args)
				}
				sub := c.Args[0]
				if known[sub] == nil {
					known[sub] = helpFlags(t, bin, sub)
				}
				for flag := range flags(c.Args[1:]) {
					if !known[sub][flag] {
						t.Errorf("%s: %s: `palisade %s` has no flag %s", v.name, d.Name, sub, flag)
					}
				}
			}
		}
	}
}

func helpFlags(t *testing.T, bin, sub string) map[string]bool {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, sub, "--help")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("palisade %s --help: %v\n%s", sub, err, out.String())
	}
	if !strings.Contains(out.String(), "Usage:\n  palisade "+sub+" ") {
		t.Fatalf("palisade %s --help is no subcommand's help:\n%s", sub, out.String())
	}
	set := map[string]bool{}
	for _, m := range flagPattern.FindAllStringSubmatch(out.String(), -1) {
		set[m[1]] = true
	}
	return set
}
