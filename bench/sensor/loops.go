package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/bench/internal/cpustat"
	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/sensor"
	"github.com/palisade-dev/palisade/test/runtime"
)

// Loop bodies, run by the container's busybox shell. The spawn loop
// forks and execs /bin/true (a busybox applet reached by path, so the
// shell does not run it as a builtin). The open loop is the shell's own
// open for a redirection, no fork; it opens for writing because the
// sensor reports write-opens (modifyFile), so every iteration is an event.
const (
	spawnBody = "/bin/true"
	openBody  = ": > /tmp/bench-open"
)

// The ways a loop runs, side by side in each round.
const (
	noSensor  = iota // nothing loaded
	unwatched        // probe attached, the container not watched: a host process's cost
	watching         // probe attached, container watched, events drained
	matching         // as watching, and every event decided by the 100-rule matcher
	scenarios
)

var scenarioNames = [scenarios]string{"no sensor", "loaded, unwatched", "sensor", "sensor + 100 rules"}

// loopStats is one loop body under one scenario, over all rounds.
type loopStats struct {
	perIter []time.Duration // wall time, one per round
	// cpuPerIter is the CPU time an iteration cost, one per round: the
	// container's (its cgroup's usage, where the sensor's BPF programs
	// run too, in the context of the process they trace) plus this
	// process's (the sensor's user-space side: reading the ring buffer,
	// deciding), which wall time leaves out when it runs on another CPU.
	// It is not a shield against a VM's steal: this machine's kernel
	// charges the time the hypervisor takes from a vCPU to the task that
	// was running, so CPU time swings with steal as wall time does (1.2 to
	// 4.8 ms per spawn between identical rounds at 29% steal).
	cpuPerIter        []time.Duration
	sensorCPUPerIter  []time.Duration // the second part of cpuPerIter alone
	events, unmatched uint64          // events seen while the loop ran; events no rule matched
	iterations        int
}

func (s *loopStats) median() time.Duration { return median(s.perIter) }

func median(x []time.Duration) time.Duration {
	d := slices.Clone(x)
	slices.Sort(d)
	return d[len(d)/2]
}

// consumer drains a probe's events as the sensor does: converting each
// to the matcher's input and deciding it when a matcher is given. It
// keeps a sample of distinct events for the matcher-vs-Rego comparison.
type consumer struct {
	ds        *deciders
	events    atomic.Uint64
	unmatched atomic.Uint64
	done      chan struct{}

	mu     sync.Mutex
	sample map[bundles.RuntimeEvent]bool
}

// sampleSize bounds the distinct events kept for compareMatch.
const sampleSize = 256

func consume(p *sensor.Probe, ds *deciders) *consumer {
	c := &consumer{ds: ds, done: make(chan struct{}), sample: map[bundles.RuntimeEvent]bool{}}
	go func() {
		defer close(c.done)
		// Batches, as palisade sensor's agent reads them, decided into
		// one decision, as its agent does.
		var d bundles.RuntimeDecision
		for batch := range p.Batches() {
			c.events.Add(uint64(len(batch)))
			if c.ds == nil {
				continue
			}
			for i := range batch {
				re := runtimeEvent(&batch[i])
				if c.ds.matcher.MatchInto(&d, &re, benchContainer); len(d.Matches) == 0 {
					c.unmatched.Add(1)
				}
				c.mu.Lock()
				if len(c.sample) < sampleSize {
					c.sample[re] = true
				}
				c.mu.Unlock()
			}
		}
	}()
	return c
}

// settle waits until no event has arrived for a little longer than the
// probe's poll interval, so that a loop's events are counted for that
// loop; bounded, since a busy host may never go quiet.
func (c *consumer) settle() uint64 {
	last := c.events.Load()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(sensor.DefaultPollInterval * 3 / 2)
		n := c.events.Load()
		if n == last {
			return n
		}
		last = n
	}
	return last
}

// cost is what one loop run took: wall time, the container's CPU time
// and this process's CPU time.
type cost struct{ wall, container, self time.Duration }

func (c cost) minus(o cost) cost {
	return cost{c.wall - o.wall, c.container - o.container, c.self - o.self}
}

// timeLoop runs n iterations of body in one runc exec and returns its cost.
func timeLoop(tb testing.TB, c *runtime.Container, n int, body string) cost {
	script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do %s; i=$((i+1)); done", n, body)
	cg0, self0 := cgroupCPU(tb, c.CgroupPath()), selfCPU(tb)
	start := time.Now()
	if _, errOut, code := c.Exec(tb, "sh", "-c", script); code != 0 {
		tb.Fatalf("loop %q: exit %d: %s", body, code, errOut)
	}
	wall := time.Since(start)
	return cost{wall, cgroupCPU(tb, c.CgroupPath()) - cg0, selfCPU(tb) - self0}
}

// measure runs the loop and records its cost per iteration without runc
// exec's own cost (tens of milliseconds, and the same in every scenario):
// an empty loop's cost, taken just before in the same state, is subtracted.
func (s *loopStats) measure(tb testing.TB, c *runtime.Container, n int, body string) {
	empty := timeLoop(tb, c, 0, body)
	d := timeLoop(tb, c, n, body).minus(empty)
	per := func(x time.Duration) time.Duration { return x / time.Duration(n) }
	s.perIter = append(s.perIter, per(d.wall))
	s.cpuPerIter = append(s.cpuPerIter, per(d.container+d.self))
	s.sensorCPUPerIter = append(s.sensorCPUPerIter, per(d.self))
}

// cgroupCPU is the CPU time used so far by the processes of the cgroup at
// path (relative to a hierarchy's root): cgroup v2's cpu.stat usage_usec
// (at /sys/fs/cgroup or, on a hybrid host, /sys/fs/cgroup/unified), else
// v1's cpuacct.usage.
func cgroupCPU(tb testing.TB, path string) time.Duration {
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		raw, err := os.ReadFile(filepath.Join(root, path, "cpu.stat"))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(raw)) {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					tb.Fatalf("cpu.stat of %s: %v", path, err)
				}
				return time.Duration(n) * time.Microsecond
			}
		}
	}
	raw, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuacct", path, "cpuacct.usage"))
	if err != nil {
		tb.Fatalf("no CPU accounting for cgroup %s: %v", path, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		tb.Fatalf("cpuacct.usage of %s: %v", path, err)
	}
	return time.Duration(n)
}

// selfCPU is this process's CPU time so far, user and system.
func selfCPU(tb testing.TB) time.Duration {
	d, err := cpustat.Self()
	if err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return d
}

// loops runs the spawn and open loops under every scenario, in rounds;
// the scenarios' order rotates from round to round so that a drift of the
// machine (another job, frequency) does not favour one of them.
func loops(tb testing.TB, cfg config, ds *deciders) (spawn, open [scenarios]loopStats, drops uint64, sample []bundles.RuntimeEvent) {
	c := runtime.Start(tb, runtime.Options{})
	samples := map[bundles.RuntimeEvent]bool{}
	for r := range cfg.Rounds {
		for k := range scenarios {
			s := (r + k) % scenarios
			if s == noSensor {
				spawn[s].measure(tb, c, cfg.Spawns, spawnBody)
				open[s].measure(tb, c, cfg.Opens, openBody)
				continue
			}
			p, err := sensor.Load(sensor.Options{})
			if err != nil {
				tb.Fatalf("load sensor: %v", err)
			}
			if s == unwatched {
				// Nothing to watch: the programs still run on every
				// exec, fork and syscall exit of the machine.
			} else if err := p.Watch(c.CgroupID()); err != nil {
				p.Close()
				tb.Fatalf("watch container: %v", err)
			}
			var m *deciders
			if s == matching {
				m = ds
			}
			con := consume(p, m)
			for _, l := range []struct {
				st   *loopStats
				n    int
				body string
			}{{&spawn[s], cfg.Spawns, spawnBody}, {&open[s], cfg.Opens, openBody}} {
				before, unmatched := con.settle(), con.unmatched.Load()
				l.st.measure(tb, c, l.n, l.body)
				l.st.events += con.settle() - before
				l.st.unmatched += con.unmatched.Load() - unmatched
				l.st.iterations += l.n
			}
			d, err := p.Drops()
			drops += d
			p.Close()
			<-con.done
			if err != nil {
				tb.Fatalf("read drops: %v", err)
			}
			for ev := range con.sample {
				if len(samples) < sampleSize {
					samples[ev] = true
				}
			}
		}
	}
	for ev := range samples {
		sample = append(sample, ev)
	}
	return spawn, open, drops, sample
}
