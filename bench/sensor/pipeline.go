package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/bench/internal/cpustat"
	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/sensor"
	"github.com/palisade-dev/palisade/sensor/agent"
	"github.com/palisade-dev/palisade/sensor/pods"
)

// genEnv makes this program (or its test binary) a load generator: it
// makes that many modifyFile events and exits. A Go loop of raw
// syscalls, not a shell in the container, because the shell's ~10 µs an
// iteration would measure the shell, not the pipeline; and the cheapest
// syscall the sensor reports, ftruncate(2) of a file it keeps open on a
// tmpfs (one syscall, 1.8 µs here without the sensor, against 5.0 µs
// for an open and a close on ext4), so that the live rate is as little
// the generators' own cost as this machine allows. The sensor's side is
// the same as for a write-open: the file is found through the fd, its
// path built, the event put in the ring.
const genEnv = "PALISADE_BENCH_SENSOR_GENERATE"

// genDir is where the generators' files are: a tmpfs, where truncating
// an empty file touches no disk, or the temporary directory when there
// is none.
func genDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// generate is the generator's main; it returns the exit code. The open
// that creates its file is its first event (createFile), each truncate
// one more (modifyFile).
func generate(count string) int {
	n, err := strconv.Atoi(count)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if n == 0 {
		return 0
	}
	f := filepath.Join(genDir(), "palisade-bench-sensor-gen-"+strconv.Itoa(os.Getpid()))
	defer os.Remove(f)
	fd, err := syscall.Open(f, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer syscall.Close(fd)
	for range n - 1 {
		if err := syscall.Ftruncate(fd, 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// The two ways the pipeline is measured (see README.md).
const (
	// live: the generators run while the pipeline consumes. The rate is
	// bounded by how fast the generators make events (each pays its
	// syscalls and the sensor's BPF programs), not only by the pipeline.
	live = iota
	// drain: the generators run to the end while the consumer is held,
	// the ring buffer (sized to hold them all) keeping their events;
	// then the consumer is timed emptying it. No generator competes for
	// the CPUs: this is the pipeline's own capacity.
	drain
	pipeModes
)

var pipeModeNames = [pipeModes]string{"live", "drain"}

// pipelineResult is one measurement of the pipeline: the events the
// agent handled and how long that took, the kernel's drops, the CPU time
// of this process (the ring buffer reader, the decode and the agent; the
// generators are other processes) and of the generators, and the stream
// lines the decisions wrote.
type pipelineResult struct {
	Events      int
	Elapsed     time.Duration
	Drops       uint64
	ConsumerCPU time.Duration
	GenCPU      time.Duration
	Lines       uint64
}

func (r pipelineResult) rate() float64 { return float64(r.Events) / r.Elapsed.Seconds() }

// pipeCase is one row of the pipeline table: a mode and the bundle the
// agent decides with.
type pipeCase struct {
	mode   int
	policy string // names the bundle in the table
	engine *bundles.Engine
}

// pipelineStats is one case over all rounds.
type pipelineStats struct {
	pipeCase
	runs []pipelineResult
}

// median returns the run of median rate.
func (s *pipelineStats) median() pipelineResult {
	r := slices.Clone(s.runs)
	slices.SortFunc(r, func(a, b pipelineResult) int {
		switch {
		case a.rate() < b.rate():
			return -1
		case a.rate() > b.rate():
			return 1
		}
		return 0
	})
	return r[len(r)/2]
}

// benchContainerID is the container the generators' cgroup is attributed
// to.
const benchContainerID = "bench-generator"

// benchAttributor attributes the generators' cgroup to benchContainer:
// the pod informer (a map lookup under a read lock, filled from the API
// server) is not what is measured here.
type benchAttributor struct{ cgroup uint64 }

func (b benchAttributor) CgroupIDFor(id string) (uint64, bool) {
	return b.cgroup, id == benchContainerID
}

func (b benchAttributor) Lookup(id string) (*bundles.Container, bool) {
	if id != benchContainerID {
		return nil, false
	}
	return benchContainer, true
}

// countingWriter counts the stream lines written to it (one Write each).
type countingWriter struct{ n atomic.Uint64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n.Add(1); return len(p), nil }

// pipelines measures every case, for cfg.PipeRounds rounds each, the
// cases' order rotating from round to round, through the whole pipeline
// `palisade sensor` runs: the ring buffer, the decode, the batches, and
// the agent (attribution, the native matcher of the case's bundle,
// metrics, streams).
func pipelines(tb testing.TB, cfg config, cases []pipeCase) []pipelineStats {
	out := make([]pipelineStats, len(cases))
	for i, c := range cases {
		out[i].pipeCase = c
	}
	for r := range cfg.PipeRounds {
		for k := range out {
			st := &out[(r+k)%len(out)]
			st.runs = append(st.runs, pipeline(tb, st.mode, cfg.Events, cfg.Generators, st.engine))
		}
	}
	return out
}

// pipeline runs gens generators, n events in all, each in the same
// cgroup from its first instruction (clone3 into the cgroup), so that
// they are the only watched processes, and has an agent decide every
// event of that cgroup. It ends when all n file events were decided, or
// fewer if the kernel counted drops. Waits are bounded by a minute.
func pipeline(tb testing.TB, mode, n, gens int, e *bundles.Engine) pipelineResult {
	root, err := sensor.Cgroup2Mount()
	if err != nil {
		tb.Fatalf("find cgroup v2: %v", err)
	}
	dir, err := os.MkdirTemp(root, "palisade-bench-sensor-")
	if err != nil {
		tb.Fatalf("make cgroup: %v", err)
	}
	defer func() {
		// The generators have exited; the cgroup empties once they are reaped.
		for i := 0; i < 100 && os.Remove(dir) != nil; i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		tb.Fatalf("stat cgroup: %v", err)
	}
	opts := sensor.Options{}
	if mode == drain {
		// Room for every event (about 100 bytes each with the ring's
		// own header) with a margin: a drop here would be a sizing
		// error, and is reported as a drop all the same.
		opts.RingBytes = 4 << 20
		for int(opts.RingBytes) < n*160 {
			opts.RingBytes <<= 1
		}
	}
	p, err := sensor.Load(opts)
	if err != nil {
		tb.Fatalf("load sensor: %v", err)
	}
	defer p.Close()
	var lines countingWriter
	ag := agent.New(agent.Options{NodeName: "bench", Watcher: p, Containers: benchAttributor{st.Ino},
		Registerer: prometheus.NewRegistry(), Alerts: &lines, Events: &lines})
	defer ag.Close()
	ag.Activate(e)
	for deadline := time.Now().Add(10 * time.Second); ag.Status().Matcher != "native"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("native matcher not compiled after 10 s")
		}
	}
	ag.OnContainer(pods.ContainerEvent{Type: pods.ContainerStarted, ContainerID: benchContainerID, ContainerName: "gen",
		PodUID: "bench-uid", Namespace: benchContainer.Namespace, Pod: benchContainer.PodName, Facts: benchContainer})
	if ag.Status().Watched != 1 {
		tb.Fatalf("the agent did not watch the generators' cgroup")
	}
	cg, err := os.Open(dir)
	if err != nil {
		tb.Fatalf("open cgroup: %v", err)
	}
	defer cg.Close()
	self, err := os.Executable()
	if err != nil {
		tb.Fatalf("find own executable: %v", err)
	}
	cmds := make([]*exec.Cmd, gens)
	var res pipelineResult
	waitGens := func() {
		for _, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				tb.Fatalf("generator: %v", err)
			}
			res.GenCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
	}
	start, cpu0 := time.Now(), cpuTime()
	for i := range cmds {
		c := n / gens
		if i < n%gens {
			c++
		}
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), genEnv+"="+strconv.Itoa(c))
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
		if err := cmd.Start(); err != nil {
			tb.Fatalf("start generator: %v", err)
		}
		cmds[i] = cmd
	}
	if mode == drain {
		// Hold the consumer until every event is in the ring (or
		// dropped), then time the drain alone.
		waitGens()
		start, cpu0 = time.Now(), cpuTime()
	}
	// Dropped events never arrive: the drop count is read now and then so
	// that a lossy run ends instead of waiting for the timeout.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	files, handled := 0, 0
	timeout := time.After(time.Minute)
	for files < n {
		select {
		case batch := <-p.Batches():
			// agent.ConsumeBatches's body, counting as it goes.
			for i := range batch {
				ag.Handle(&batch[i])
				if op := batch[i].Op; op == sensor.OpModifyFile || op == sensor.OpCreateFile {
					files++
				}
			}
			handled += len(batch)
		case <-tick.C:
			if d, err := p.Drops(); err == nil && files+int(d) >= n {
				n = files
			}
		case <-timeout:
			for _, cmd := range cmds {
				cmd.Process.Kill()
				cmd.Wait()
			}
			tb.Fatalf("%d of %d events after a minute", files, n)
		}
	}
	res.Elapsed, res.ConsumerCPU = time.Since(start), cpuTime()-cpu0
	if mode == live {
		waitGens()
	}
	if res.Drops, err = p.Drops(); err != nil {
		tb.Fatalf("read drops: %v", err)
	}
	if got := ag.Status().Events; got != uint64(handled) {
		tb.Fatalf("the agent counted %d events, %d were handed to it", got, handled)
	}
	res.Events, res.Lines = handled, lines.n.Load()
	return res
}

// cpuTime returns this process's user plus system time (zero if
// getrusage fails).
func cpuTime() time.Duration {
	d, _ := cpustat.Self()
	return d
}
