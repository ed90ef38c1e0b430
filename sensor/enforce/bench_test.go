package enforce

import (
	"fmt"
	"testing"

	"github.com/palisade-dev/palisade/test/runtime"
)

// loop runs a busybox shell loop of n iterations of body in the container
// and fails on a non-zero exit. One runc exec per benchmark run: its
// ~50 ms are spread over b.N iterations.
func loop(b *testing.B, c *runtime.Container, n int, body string) {
	b.Helper()
	script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do %s; i=$((i+1)); done", n, body)
	if _, errOut, code := c.Exec(b, "sh", "-c", script); code != 0 {
		b.Fatalf("loop: exit %d: %s", code, errOut)
	}
}

// BenchmarkOpen is an open loop in a container (the shell's own open for
// a redirection: no fork), without fanotify and with the container's
// mount marked and every open allowed: the cost of a user-space decision
// per open.
func BenchmarkOpen(b *testing.B) {
	c := runtime.Start(b, runtime.Options{})
	const body = "read x < /etc/passwd"
	b.Run("unmarked", func(b *testing.B) { loop(b, c, b.N, body) })
	b.Run("fanotify", func(b *testing.B) {
		f, err := NewFanotify(func(Access) Verdict { return Allow })
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := f.MarkContainer(containerRoot(c)); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		loop(b, c, b.N, body)
	})
}

// BenchmarkSpawn is a fork+exec loop in a container without the exec
// killer, with it loaded but no rule for this container (a map lookup per
// exec), and with a rule for another path in this container (the path
// walk and a second lookup per exec).
func BenchmarkSpawn(b *testing.B) {
	c := runtime.Start(b, runtime.Options{})
	const body = "/bin/true"
	b.Run("none", func(b *testing.B) { loop(b, c, b.N, body) })
	k, err := LoadExecKiller()
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	b.Run("killer", func(b *testing.B) { loop(b, c, b.N, body) })
	if err := k.Block(c.CgroupID(), "/tmp/never"); err != nil {
		b.Fatal(err)
	}
	b.Run("killer-rule", func(b *testing.B) { loop(b, c, b.N, body) })
}
