// Command sensor is the node runtime sensor's benchmark harness (issue 6):
// in one run, side by side, a spawn loop and an open loop inside a real
// runc container with no sensor, with the sensor watching the container,
// and with every event also decided by a 100-rule matcher; the ring
// buffer's throughput with its drops; and the native matcher against Rego
// per event. It prints a markdown table.
//
// It needs root, runc and busybox-static, like the sensor's tests. The
// containers come from test/runtime, whose API takes a testing.TB: the
// program passes it harnessTB (tb.go), and the package's test passes its
// own *testing.T, so both run the same code.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/bench/internal/cpustat"
	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// config is the run length: iterations per loop and round, rounds,
// pipeline events, and time per decider.
type config struct {
	Spawns, Opens, Rounds, Events int
	// Generators are the pipeline's load generator processes; PipeRounds
	// the rounds of each pipeline mode.
	Generators, PipeRounds int
	MatchTime              time.Duration
	// Examples is the example policy repository, decided on as a second
	// comparison (cluster prod): the rules sensor/match's own benchmarks use.
	Examples string
	// CPUProfile, when set, is where a CPU profile of this process
	// during the loops is written: the sensor's user space (reader,
	// decoding, the 100-rule matcher).
	CPUProfile string
}

func main() {
	if n := os.Getenv(genEnv); n != "" {
		os.Exit(generate(n))
	}
	var cfg config
	flag.IntVar(&cfg.Spawns, "spawns", 1000, "fork+exec iterations per spawn loop")
	flag.IntVar(&cfg.Opens, "opens", 20000, "open+close iterations per open loop")
	flag.IntVar(&cfg.Rounds, "rounds", 9, "rounds of every scenario (the table shows medians)")
	flag.IntVar(&cfg.Events, "events", 1000000, "events through the pipeline per run")
	flag.IntVar(&cfg.Generators, "generators", 2, "pipeline load generator processes")
	flag.IntVar(&cfg.PipeRounds, "pipeline-rounds", 3, "rounds of each pipeline mode (live, drain)")
	flag.DurationVar(&cfg.MatchTime, "match-time", 2*time.Second, "time per decider (native, Rego)")
	flag.StringVar(&cfg.Examples, "policies", "policies-example", "example policy repository (cluster prod) for the second matcher comparison")
	flag.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of this process during the loops (the sensor's user space) to this file")
	flag.Parse()
	tb, err := newHarnessTB()
	if err != nil {
		log.Fatal(err)
	}
	rep, err := run(tb, cfg)
	if cerr := tb.close(); err == nil {
		err = cerr
	}
	if err != nil {
		log.Fatal(err)
	}
	rep.write(os.Stdout)
}

// report is everything one run measured.
type report struct {
	cfg            config
	loadavg        string // /proc/loadavg's 1-minute figure at the start: others' work shares the CPUs
	elapsed        time.Duration
	spawn, open    [scenarios]loopStats
	loopDrops      uint64
	loopSteal      float64 // % of the machine's CPU time the hypervisor took during the loops
	pipe           []pipelineStats
	rules, example matchResult
}

// run measures everything once. A harnessTB's Fatalf is recovered into
// the returned error; a *testing.T's ends the test as usual.
func run(tb testing.TB, cfg config) (rep *report, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = errors.New(f.msg)
		}
	}()
	if cfg.Spawns <= 0 || cfg.Opens <= 0 || cfg.Rounds <= 0 || cfg.Events <= 0 || cfg.Generators <= 0 || cfg.PipeRounds <= 0 || cfg.MatchTime <= 0 {
		return nil, fmt.Errorf("every count and duration must be positive: %+v", cfg)
	}
	start := time.Now()
	rep = &report{cfg: cfg, loadavg: "unknown"}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			rep.loadavg = f[0]
		}
	}
	repo, err := rulesRepo(tb.TempDir())
	if err != nil {
		return nil, fmt.Errorf("write rules: %w", err)
	}
	ds, err := newDeciders(repo, benchCluster)
	if err != nil {
		return nil, err
	}
	var sample []bundles.RuntimeEvent
	before := cpustat.Read()
	stopProfile, err := startProfile(cfg.CPUProfile)
	if err != nil {
		return nil, err
	}
	rep.spawn, rep.open, rep.loopDrops, sample = loops(tb, cfg, &ds)
	if err := stopProfile(); err != nil {
		return nil, err
	}
	rep.loopSteal = before.StealPercent(cpustat.Read())
	if rep.rules, err = compareMatch(ds, sample, cfg.MatchTime); err != nil {
		return nil, fmt.Errorf("100 rules: %w", err)
	}
	examples, err := policy.LoadDir(cfg.Examples)
	if err != nil {
		return nil, fmt.Errorf("load example policies: %w", err)
	}
	exds, err := newDeciders(examples, "prod")
	if err != nil {
		return nil, fmt.Errorf("example policies: %w", err)
	}
	logRepo, err := logAllRepo(tb.TempDir())
	if err != nil {
		return nil, fmt.Errorf("write log-all rules: %w", err)
	}
	logds, err := newDeciders(logRepo, benchCluster)
	if err != nil {
		return nil, fmt.Errorf("log-all rules: %w", err)
	}
	rep.pipe = pipelines(tb, cfg, []pipeCase{
		{live, "policies-example (prod)", exds.engine}, {drain, "policies-example (prod)", exds.engine},
		{live, "log every event", logds.engine}, {drain, "log every event", logds.engine},
	})
	if rep.example, err = compareMatch(exds, sample, cfg.MatchTime); err != nil {
		return nil, fmt.Errorf("example policies: %w", err)
	}
	rep.elapsed = time.Since(start)
	return rep, nil
}

// startProfile starts a CPU profile into file, when one is named, and
// returns what stops it and closes the file.
func startProfile(file string) (stop func() error, err error) {
	if file == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// write prints the run as markdown: the header names the machine and the
// run length, since the ratios mean little without them.
func (r *report) write(w io.Writer) {
	fmt.Fprintf(w, "Node runtime sensor, %d CPUs (load average %s at start), %s total: loops of %d spawns and %d opens in a runc busybox container, %d rounds (medians; scenarios rotate per round); %d pipeline events; %v per decider.\n\n",
		runtime.NumCPU(), r.loadavg, r.elapsed.Round(time.Second), r.cfg.Spawns, r.cfg.Opens, r.cfg.Rounds, r.cfg.Events, r.cfg.MatchTime)
	fmt.Fprintln(w, "| loop | scenario | wall per iteration | rounds' range | ratio to no sensor | median of per-round ratios | CPU per iteration | of which sensor user space | CPU ratio to no sensor | median of per-round CPU ratios | events / iteration | unmatched events |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, l := range []struct {
		name   string
		st     *[scenarios]loopStats
		target string
	}{{"spawn (fork+exec /bin/true)", &r.spawn, " (target ≤ 1.05)"}, {"open (write-open+close)", &r.open, ""}} {
		base, cpuBase := l.st[noSensor].median(), median(l.st[noSensor].cpuPerIter)
		for s := range scenarios {
			st := &l.st[s]
			m, cpu := st.median(), median(st.cpuPerIter)
			ratio, paired, cpuRatio, cpuPaired, perIter, unmatched := "1.00", "1.00", "1.00", "1.00", "n/a", "n/a"
			if s != noSensor {
				ratio = fmt.Sprintf("%.2f%s", float64(m)/float64(base), l.target)
				paired = fmt.Sprintf("%.2f", pairedRatio(st.perIter, l.st[noSensor].perIter))
				cpuRatio = fmt.Sprintf("%.3f", float64(cpu)/float64(cpuBase))
				cpuPaired = fmt.Sprintf("%.3f", pairedRatio(st.cpuPerIter, l.st[noSensor].cpuPerIter))
				perIter = fmt.Sprintf("%.2f", float64(st.events)/float64(st.iterations))
			}
			if s == matching {
				unmatched = fmt.Sprint(st.unmatched)
			}
			lo, hi := slices.Min(st.perIter), slices.Max(st.perIter)
			fmt.Fprintf(w, "| %s | %s | %s | %s – %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", l.name, scenarioNames[s], us(m), us(lo), us(hi), ratio, paired,
				us(cpu), us(median(st.sensorCPUPerIter)), cpuRatio, cpuPaired, perIter, unmatched)
		}
	}
	fmt.Fprintf(w, "\nPer iteration: a loop's cost minus an empty loop's (runc exec's own cost), over its iterations. Wall: elapsed time. The target is on the wall time, what a workload waits. CPU: what the sensor costs the machine, the container cgroup's CPU time (the sensor's BPF programs run in the traced process's context, so their cost is in it) plus this process's (the sensor's user space: ring buffer, decoding, deciding; it runs beside the loop, on the other CPU when one is free). On a VM both move with the time the hypervisor takes from the vCPUs (steal: %.0f%% of the machine's CPU time during the loops), which the kernel charges to the task that was running; compare rounds back to back (the per-round ratios). Events per iteration count what the consumer received while the loop ran. Drops during the loops: %d.\n\n", r.loopSteal, r.loopDrops)
	fmt.Fprintln(w, "| pipeline: ring buffer → decode → agent (attribution, matcher, streams) | rules | events/s (target ≥ 200k) | rounds' range | drops (target 0) | consumer CPU ns/event | generators' CPU ns/event | stream lines/event |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	for i := range r.pipe {
		st := &r.pipe[i]
		m := st.mode
		med := st.median()
		lo, hi := med.rate(), med.rate()
		var drops uint64
		for _, x := range st.runs {
			lo, hi = min(lo, x.rate()), max(hi, x.rate())
			drops += x.Drops
		}
		gen := "n/a (exited before the drain)"
		if m == live {
			gen = fmt.Sprintf("%.0f", float64(med.GenCPU.Nanoseconds())/float64(med.Events))
		}
		fmt.Fprintf(w, "| %s, %d generators | %s | %.0f | %.0f – %.0f | %d | %.0f | %s | %.2f |\n", pipeModeNames[m], r.cfg.Generators, st.policy, med.rate(), lo, hi, drops,
			float64(med.ConsumerCPU.Nanoseconds())/float64(med.Events), gen, float64(med.Lines)/float64(med.Events))
	}
	fmt.Fprintf(w, "\nPipeline: %d rounds of each mode (medians), %d events a run, decided with policies-example (cluster prod: nothing in it matches the generators' writes, the common case) and with one rule that logs every event (a line on the event stream each). live: the generators run while the pipeline consumes, so the rate is at most what the generators can produce on this machine's CPUs. drain: the generators run to the end first, the ring buffer holding their events, then the pipeline alone is timed emptying it: its capacity. Drops are summed over all rounds. See bench/sensor/README.md.\n\n", r.cfg.PipeRounds, r.cfg.Events)
	fmt.Fprintln(w, "| decider | events | native ns/event | Rego ns/event | Rego / native (target ≥ 50) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, m := range []struct {
		name string
		res  matchResult
	}{{fmt.Sprintf("%d rules (every event matched)", ruleCount), r.rules}, {"policies-example, cluster prod", r.example}} {
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %.0f× |\n", m.name, m.res.Events, m.res.NativeNs, m.res.RegoNs, m.res.RegoNs/m.res.NativeNs)
	}
	fmt.Fprintln(w, "\nDecider events: the distinct events the loops delivered, as the sensor converts them, in the bench container; both deciders agree on each before timing.")
}

// pairedRatio is the median over rounds of a scenario's time over the
// no-sensor time of the same round: a round's scenarios run back to back,
// so this cancels a load that changes between rounds.
func pairedRatio(x, base []time.Duration) float64 {
	r := make([]float64, len(x))
	for i := range x {
		r[i] = float64(x[i]) / float64(base[i])
	}
	slices.Sort(r)
	return r[len(r)/2]
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/1e3) }
