package agent

import (
	"os"
	"syscall"
	"testing"

	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/sensor/enforce"
)

// BenchmarkDecideAccess is the agent's share of a fanotify permission
// event on a marked container: a write open of a blocked path (matcher,
// comm read) and a read (flags only). The flags come from a function
// here; in the sensor they are one read of /proc/<tid>/syscall.
func BenchmarkDecideAccess(b *testing.B) {
	c := testRules(b, policy.ModeEnforce)
	a := New(Options{NodeName: "n", Features: enforce.Features{Fanotify: true},
		Containers: fakeContainers{"abc": shopFacts}, Backends: Backends{Fanotify: &fakeFanotify{}},
		ContainerRoot: func(uint64) (string, error) { return "/proc/7/root", nil }})
	a.rules.Store(c)
	startAbc(a)
	pid := os.Getpid()
	for _, bc := range []struct {
		name  string
		flags uint64
		want  enforce.Verdict
	}{{"write denied", syscall.O_WRONLY | syscall.O_CREAT, enforce.Deny}, {"read allowed", syscall.O_RDONLY, enforce.Allow}} {
		flags := func() (uint64, bool) { return bc.flags, true }
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if a.decideAccess(42, enforce.Open, "/etc/foo", pid, flags) != bc.want {
					b.Fatal("wrong verdict")
				}
			}
		})
	}
}
