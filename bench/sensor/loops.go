package main

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	perIter           []time.Duration // one per round
	events, unmatched uint64          // events seen while the loop ran; events no rule matched
	iterations        int
}

func (s *loopStats) median() time.Duration {
	d := slices.Clone(s.perIter)
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
		for ev := range p.Events() {
			c.events.Add(1)
			if c.ds == nil {
				continue
			}
			re := runtimeEvent(&ev)
			if len(c.ds.matcher.Match(&re, benchContainer).Matches) == 0 {
				c.unmatched.Add(1)
			}
			c.mu.Lock()
			if len(c.sample) < sampleSize {
				c.sample[re] = true
			}
			c.mu.Unlock()
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
		time.Sleep(50 * time.Millisecond)
		n := c.events.Load()
		if n == last {
			return n
		}
		last = n
	}
	return last
}

// timeLoop runs n iterations of body in one runc exec and returns its
// wall time.
func timeLoop(tb testing.TB, c *runtime.Container, n int, body string) time.Duration {
	script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do %s; i=$((i+1)); done", n, body)
	start := time.Now()
	if _, errOut, code := c.Exec(tb, "sh", "-c", script); code != 0 {
		tb.Fatalf("loop %q: exit %d: %s", body, code, errOut)
	}
	return time.Since(start)
}

// perIteration is the loop's time per iteration without runc exec's own
// cost (tens of milliseconds, and the same in every scenario): an empty
// loop's time, taken just before in the same state, is subtracted.
func perIteration(tb testing.TB, c *runtime.Container, n int, body string) time.Duration {
	empty := timeLoop(tb, c, 0, body)
	full := timeLoop(tb, c, n, body)
	return (full - empty) / time.Duration(n)
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
				spawn[s].perIter = append(spawn[s].perIter, perIteration(tb, c, cfg.Spawns, spawnBody))
				open[s].perIter = append(open[s].perIter, perIteration(tb, c, cfg.Opens, openBody))
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
				l.st.perIter = append(l.st.perIter, perIteration(tb, c, l.n, l.body))
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
