package sensor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// genEnv makes the test binary a load generator (see TestMain): it opens
// a file for writing that many times, one modifyFile event each, and exits.
const genEnv = "PALISADE_SENSOR_GENERATE"

func TestMain(m *testing.M) {
	if n := os.Getenv(genEnv); n != "" {
		os.Exit(generate(n))
	}
	if len(os.Args) > 1 && os.Args[1] == fileOpsArg {
		os.Exit(fileOps())
	}
	os.Exit(m.Run())
}

func generate(count string) int {
	n, err := strconv.Atoi(count)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	f := filepath.Join(os.TempDir(), "palisade-sensor-gen-"+strconv.Itoa(os.Getpid()))
	defer os.Remove(f)
	for range n {
		fd, err := syscall.Open(f, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		syscall.Close(fd)
	}
	return 0
}

// benchCgroup makes a cgroup v2 directory for the generator, so that it is
// the only watched process: the test binary itself runs in the root cgroup
// with the rest of the host.
func benchCgroup(tb testing.TB) (dir string, id uint64) {
	tb.Helper()
	root, err := Cgroup2Mount()
	if err != nil {
		tb.Fatal(err)
	}
	dir, err = os.MkdirTemp(root, "palisade-sensor-test-")
	if err != nil {
		tb.Fatalf("make cgroup: %v", err)
	}
	tb.Cleanup(func() {
		// The generator has exited; its cgroup empties once it is reaped.
		for i := 0; i < 100 && os.Remove(dir) != nil; i++ {
			time.Sleep(10 * time.Millisecond)
		}
	})
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		tb.Fatal(err)
	}
	return dir, st.Ino
}

// startGenerator runs the generator in the cgroup at dir from its first
// instruction (clone3 with CLONE_INTO_CGROUP).
func startGenerator(tb testing.TB, dir string, n int) *exec.Cmd {
	tb.Helper()
	cg, err := os.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	defer cg.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), genEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start generator: %v", err)
	}
	return cmd
}

// BenchmarkPipeline measures events per second from the kernel through the
// ring buffer to the Batches channel, and fails on any drop. On a shared
// machine wall time swings with the load; CPU time per event much less,
// so it is reported too: gen-cpu-ns/event is the generator's (its syscalls
// and the BPF programs they run), read-cpu-ns/event this process's (the
// ring buffer reader, the decode and the channel), and bpf-ns/event the
// kernel's run time of the sensor's programs (BPF_ENABLE_STATS, on only
// while the benchmark runs; it includes the compares every other
// process's syscalls pay, a few ns each).
func BenchmarkPipeline(b *testing.B) {
	p := load(b, Options{})
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		b.Fatalf("enable BPF run time statistics: %v", err)
	}
	defer stats.Close()
	dir, id := benchCgroup(b)
	if err := p.Watch(id); err != nil {
		b.Fatal(err)
	}
	n := b.N
	b.ResetTimer()
	self0 := cpuTime(b, syscall.RUSAGE_SELF)
	bpf0 := bpfRunTime(b, p)
	start := time.Now()
	cmd := startGenerator(b, dir, n)
	got := 0
	timeout := time.After(time.Minute)
	for got < n {
		select {
		case batch := <-p.Batches():
			for i := range batch {
				if op := batch[i].Op; op == OpModifyFile || op == OpCreateFile {
					got++
				}
			}
		case <-timeout:
			b.Fatalf("%d of %d events after a minute", got, n)
		}
	}
	elapsed := time.Since(start)
	self := cpuTime(b, syscall.RUSAGE_SELF) - self0
	bpf := bpfRunTime(b, p) - bpf0
	b.StopTimer()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("generator: %v", err)
	}
	gen := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	drops, err := p.Drops()
	if err != nil {
		b.Fatal(err)
	}
	if drops != 0 {
		b.Fatalf("%d events dropped", drops)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(gen.Nanoseconds())/float64(n), "gen-cpu-ns/event")
	b.ReportMetric(float64(self.Nanoseconds())/float64(n), "read-cpu-ns/event")
	b.ReportMetric(float64(bpf.Nanoseconds())/float64(n), "bpf-ns/event")
}

// bpfRunTime sums the kernel's run time of the probe's programs.
func bpfRunTime(tb testing.TB, p *Probe) time.Duration {
	var sum time.Duration
	for name, prog := range p.coll.Programs {
		st, err := prog.Stats()
		if err != nil {
			tb.Fatalf("stats of %s: %v", name, err)
		}
		sum += st.Runtime
	}
	return sum
}

// cpuTime returns the user plus system time of who (RUSAGE_SELF: this
// process).
func cpuTime(tb testing.TB, who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A lone event, far below WakeupBytes, still arrives within about one
// PollInterval: batching wakeups never holds an event back for long.
func TestLoneEventLatency(t *testing.T) {
	const poll = 10 * time.Millisecond
	p := load(t, Options{PollInterval: poll, WakeupBytes: 1 << 20})
	dir, id := benchCgroup(t)
	if err := p.Watch(id); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		// Read while the generator runs: its exit may come long after
		// its event (the race detector sleeps a second at exit).
		cmd := startGenerator(t, dir, 1)
		timeout := time.After(time.Second)
		for got := false; !got; {
			select {
			case ev := <-p.Events():
				// The generator's fork and exec come first: wait for
				// its open.
				if ev.Op != OpCreateFile || !strings.Contains(ev.Path, "palisade-sensor-gen-") {
					continue
				}
				got = true
				if lat := time.Since(ev.Time); lat > poll+40*time.Millisecond {
					t.Errorf("event %d: %v after the kernel saw it (poll %v)", i, lat, poll)
				}
			case <-timeout:
				t.Fatalf("event %d: none within a second", i)
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("generator: %v", err)
		}
	}
}

// A consumer that stops reading fills the Events channel, then the ring;
// the kernel then counts what it cannot store. Every event the generator
// caused is either delivered or counted: none is lost silently.
func TestDropsCounted(t *testing.T) {
	p := load(t, Options{RingBytes: 4096, EventBuffer: 1, PollInterval: time.Millisecond})
	dir, id := benchCgroup(t)
	if err := p.Watch(id); err != nil {
		t.Fatal(err)
	}
	const n = 5000
	if err := startGenerator(t, dir, n).Wait(); err != nil {
		t.Fatalf("generator: %v", err)
	}
	// Events: the generator's fork (cloned into the cgroup) and exec, n
	// opens of its file, its unlink.
	const caused = 2 + n + 1
	delivered := 0
	for quiet := time.After(time.Second); ; {
		select {
		case <-p.Events():
			delivered++
			quiet = time.After(200 * time.Millisecond)
			continue
		case <-quiet:
		}
		break
	}
	drops, err := p.Drops()
	if err != nil {
		t.Fatal(err)
	}
	if drops == 0 {
		t.Fatalf("a 4 KiB ring and a consumer that does not read: no drops counted (%d delivered)", delivered)
	}
	if delivered+int(drops) != caused {
		t.Errorf("%d delivered + %d dropped = %d, want the %d events the generator caused", delivered, drops, delivered+int(drops), caused)
	}
	t.Logf("%d delivered, %d dropped", delivered, drops)
}
