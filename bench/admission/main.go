// Command admission is the admission load benchmark: Palisade's webhook,
// a no-op webhook (the floor) and a plain OPA server (the peer), each
// driven at constant arrival rates by a second process (see load.go).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

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
	flag.Parse()
	// Palisade and the floor are served from this process, with the
	// garbage collector set as palisade admission sets it.
	gc := gctune.Serve("/sys/fs/cgroup")
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
	results := map[string]map[int]result{}
	for _, t := range ts.list {
		results[t.name] = map[int]result{}
		for _, r := range rs {
			res, err := load(t, ts, r, *dur)
			if err != nil {
				log.Fatalf("%s at %d/s: %v", t.name, r, err)
			}
			results[t.name][r] = res
			fmt.Fprintf(os.Stderr, "%s %d/s: p99 %v\n", t.name, r, res.P99)
			time.Sleep(time.Second)
		}
	}
	fmt.Printf("Admission load, %v per rate, %d CPUs, loader in a second process; Palisade and the floor served with GOGC=%d (as palisade admission), OPA with its defaults.\n\n", *dur, runtime.NumCPU(), gc.Percent)
	fmt.Println("Every Palisade and OPA answer is checked against the decision the bundle's engine makes in-process (the no-op floor allows everything and is not checked).")
	fmt.Println()
	fmt.Println("| target | rate (req/s) | p50 | p99 | max | errors | wrong decisions | achieved (req/s) |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, t := range ts.list {
		for _, r := range rs {
			x := results[t.name][r]
			wrong := fmt.Sprint(x.Wrong)
			if t.name == "noop" {
				wrong = "n/a"
			}
			fmt.Printf("| %s | %d | %v | %v | %v | %d / %d | %s | %.0f |\n", t.name, r, ms(x.P50), ms(x.P99), ms(x.Max), x.Errors, x.Sent, wrong, x.Achieved)
		}
	}
	fmt.Println("\n| rate (req/s) | Palisade p99 / no-op p99 |\n|---:|---:|")
	for _, r := range rs {
		p, n := results["palisade"][r].P99, results["noop"][r].P99
		fmt.Printf("| %d | %.2f |\n", r, float64(p)/float64(max(n, 1)))
	}
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
	out, err := cmd.Output()
	if err != nil {
		return result{}, err
	}
	var r result
	return r, json.Unmarshal(out, &r)
}
