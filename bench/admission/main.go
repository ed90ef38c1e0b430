// Command admission is the admission load benchmark: Palisade's webhook,
// a no-op webhook (the floor) and a plain OPA server (the peer), each
// driven at constant arrival rates by a second process (see load.go).
package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-dev/palisade/bench/internal/cpustat"
	"github.com/palisade-dev/palisade/internal/gctune"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "load" {
		runLoad(os.Args[2:])
		return
	}
	dir := flag.String("policies", "policies-example", "policy repository")
	cluster := flag.String("cluster", "prod", "cluster")
	dur := flag.Duration("duration", 10*time.Second, "duration per target and rate")
	rates := flag.String("rates", "200,1000,2000", "arrival rates (requests/s)")
	rounds := flag.Int("rounds", 3, "rounds of Palisade and the floor, interleaved")
	maxSteal := flag.Float64("max-steal", 5, "run a target again (at most twice) when the hypervisor took more than this % of the CPU time during its run, and keep the run with the least steal")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the serving process (Palisade and the floor, during their rounds) to this file")
	flag.Parse()
	if *rounds <= 0 || *dur <= 0 {
		log.Fatalf("-rounds (%d) and -duration (%v) must be positive", *rounds, *dur)
	}
	// Palisade and the floor are served from this process, with the
	// garbage collector set as palisade admission sets it.
	gc := gctune.ServeRequests("/sys/fs/cgroup")
	tmp, err := os.MkdirTemp("", "palisade-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ts, err := startTargets(*dir, *cluster, tmp)
	if err != nil {
		log.Fatal(err)
	}
	defer ts.stop()
	var rs []int
	for _, s := range strings.Split(*rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r <= 0 {
			log.Fatalf("bad rate %q", s)
		}
		rs = append(rs, r)
	}
	// Palisade and the floor take turns at each rate, round after round,
	// so that what the machine does meanwhile (here: a VM whose vCPUs
	// wait for the host, counted as steal time) falls on both alike. OPA
	// runs once per rate at the end: above its capacity it leaves a
	// backlog that would spill into the next run.
	results := map[string]map[int][]result{}
	// A run during which the hypervisor took the VM's CPUs measures the
	// host, not the server: with steal above -max-steal it is run again,
	// and the run with the least steal is kept (its steal is reported).
	run := func(t target, r int) {
		var res result
		for attempt := 0; attempt < 3; attempt++ {
			x, err := load(t, ts, r, *dur)
			if err != nil {
				log.Fatalf("%s at %d/s: %v", t.name, r, err)
			}
			fmt.Fprintf(os.Stderr, "%s %d/s: p99 %v, steal %.0f%%\n", t.name, r, x.P99, x.Steal)
			if attempt == 0 || x.Steal < res.Steal {
				res = x
			}
			res.Reruns = attempt
			time.Sleep(time.Second)
			if x.Steal <= *maxSteal {
				break
			}
		}
		if results[t.name] == nil {
			results[t.name] = map[int][]result{}
		}
		results[t.name][r] = append(results[t.name][r], res)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	for range *rounds {
		for _, r := range rs {
			for _, t := range ts.list {
				if t.name != "opa" {
					run(t, r)
				}
			}
		}
	}
	pprof.StopCPUProfile()
	for _, r := range rs {
		for _, t := range ts.list {
			if t.name == "opa" {
				run(t, r)
			}
		}
	}
	report(os.Stdout, ts.list, rs, results, *dur, gc, *maxSteal)
}

// report prints the results: each target and rate as the median round
// (by p99) with the range of p99 over rounds, then Palisade's p99 over
// the floor's round by round.
func report(w io.Writer, list []target, rs []int, results map[string]map[int][]result, dur time.Duration, gc gctune.Settings, maxSteal float64) {
	fmt.Fprintf(w, "Admission load, %v per run, %d CPUs, loader in a second process; Palisade and the floor served with GOGC=%d and a heap goal raised to %v of allocation, up to %d MiB, and new goroutines starting with %d KiB of stack at the end (as palisade admission), OPA with its defaults.\n\n", dur, runtime.NumCPU(), gc.Percent, gctune.GCInterval, gc.HeapFloor>>20, gctune.StartingStackSize()>>10)
	fmt.Fprintln(w, "Every Palisade and OPA answer is checked against the decision the bundle's engine makes in-process (the no-op floor allows everything and is not checked).")
	fmt.Fprintf(w, "Each row is the median round by p99; `p99 over rounds` gives every round. Steal is the CPU time the hypervisor took from this VM during a run (/proc/stat), the most of any round kept; a run with more than %.0f%% was run again (at most twice, keeping the run with the least steal), and reruns counts those.\n", maxSteal)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Handler p50/p99 is the server's own time per request, from its handler's call to its return; server CPU is the serving process's CPU time per request, everything included (Palisade and the floor, which are served from the harness; n/a for OPA), of which GC CPU is the collector's, over GC cycles collections; loader CPU is the loader's over the same interval (its start-up excluded), which the server shares the CPUs with. The loader speaks HTTP/2 frames on one connection (h2client.go); OPA's TLS listener speaks only HTTP/1.1, so OPA is loaded through net/http's client, which costs the loader more.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | rate (req/s) | p50 | p99 | p99 over rounds | max | handler p50 / p99 | server CPU | GC cycles / GC CPU | loader CPU | errors | wrong decisions | achieved (req/s) | loader lag p99 | steal / reruns |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, t := range list {
		for _, r := range rs {
			runs := results[t.name][r]
			byP99 := slices.Clone(runs)
			slices.SortFunc(byP99, func(a, b result) int { return cmp.Compare(a.P99, b.P99) })
			x := byP99[len(byP99)/2]
			var p99s []string
			errs, sent, wrong, reruns, steal := 0, 0, 0, 0, 0.0
			for _, run := range runs {
				p99s = append(p99s, ms(run.P99))
				errs, sent, wrong = errs+run.Errors, sent+run.Sent, wrong+run.Wrong
				reruns, steal = reruns+run.Reruns, max(steal, run.Steal)
			}
			wrongs := fmt.Sprint(wrong)
			if t.name == "noop" {
				wrongs = "n/a"
			}
			handler, cpu, collections := "n/a", "n/a", "n/a"
			if t.times != nil {
				handler = ms(x.HandlerP50) + " / " + ms(x.HandlerP99)
				cpu = ms(x.ServerCPU)
				collections = fmt.Sprintf("%d / %s", x.GCCycles, ms(x.GCCPU))
			}
			fmt.Fprintf(w, "| %s | %d | %v | %v | %s | %v | %s | %s | %s | %s | %d / %d | %s | %.0f | %v | %.0f%% / %d |\n", t.name, r, ms(x.P50), ms(x.P99),
				strings.Join(p99s, ", "), ms(x.Max), handler, cpu, collections, ms(x.LoaderCPU), errs, sent, wrongs, x.Achieved, ms(x.LagP99), steal, reruns)
		}
	}
	fmt.Fprintln(w, "\n| rate (req/s) | Palisade p99 / no-op p99, each round | median |\n|---:|---|---:|")
	for _, r := range rs {
		var ratios []float64
		var text []string
		for i, p := range results["palisade"][r] {
			if i < len(results["noop"][r]) {
				ratio := float64(p.P99) / float64(max(results["noop"][r][i].P99, 1))
				ratios = append(ratios, ratio)
				text = append(text, fmt.Sprintf("%.2f", ratio))
			}
		}
		slices.Sort(ratios)
		fmt.Fprintf(w, "| %d | %s | %.2f |\n", r, strings.Join(text, ", "), ratios[len(ratios)/2])
	}
}

// gcCounters are the serving process's collector counters.
type gcCounters struct {
	cycles uint64
	cpu    float64 // seconds
}

func readGC() gcCounters {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return gcCounters{cycles: s[0].Value.Uint64(), cpu: s[1].Value.Float64()}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// load runs the loader subcommand in a second process and reads its
// result (JSON on stdout).
func load(t target, ts *targets, rate int, dur time.Duration) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.Command(self, "load", "-url", t.url, "-ca", ts.caFile, "-rate", strconv.Itoa(rate),
		"-duration", dur.String(), "-opa="+strconv.FormatBool(t.opa), "-check="+strconv.FormatBool(t.name != "noop"), "-bundle", ts.bundleFile)
	cmd.Stderr = os.Stderr
	before := cpustat.Read()
	// Only Palisade or the floor serves during a run: the process's CPU
	// time over the run is theirs.
	cpu0, cpuErr := cpustat.Self()
	gc0 := readGC()
	out, err := cmd.Output()
	if err != nil {
		return result{}, err
	}
	cpu1, cpuErr1 := cpustat.Self()
	gc1 := readGC()
	after := cpustat.Read()
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return r, err
	}
	r.Steal = before.StealPercent(after)
	if t.times != nil {
		r.HandlerP50, r.HandlerP99 = t.times.take()
		if cpuErr == nil && cpuErr1 == nil && r.Sent > 0 {
			r.ServerCPU = (cpu1 - cpu0) / time.Duration(r.Sent)
		}
		if r.Sent > 0 {
			r.GCCycles = int(gc1.cycles - gc0.cycles)
			r.GCCPU = time.Duration((gc1.cpu - gc0.cpu) * 1e9 / float64(r.Sent))
		}
	}
	return r, nil
}
