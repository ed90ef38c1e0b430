package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain makes the test binary the pipeline's load generator when
// pipeline re-executes it, as main does for the program.
func TestMain(m *testing.M) {
	if n := os.Getenv(genEnv); n != "" {
		os.Exit(generate(n))
	}
	os.Exit(m.Run())
}

// A very short run proves that the harness works end to end: it needs
// root, runc and busybox-static and fails without them, as the sensor's
// tests do. The numbers of so short a run are noise; what is checked is
// that every part measured something and that the events are accounted.
func TestShortRun(t *testing.T) {
	cfg := config{Spawns: 100, Opens: 2000, Rounds: 1, Events: 20000, Generators: 2, PipeRounds: 1, MatchTime: 50 * time.Millisecond, Examples: "../../policies-example"}
	rep, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for s := range scenarios {
		for _, st := range []loopStats{rep.spawn[s], rep.open[s]} {
			if len(st.perIter) != cfg.Rounds || len(st.cpuPerIter) != cfg.Rounds {
				t.Errorf("%s: %d rounds of wall time and %d of CPU time measured, want %d", scenarioNames[s], len(st.perIter), len(st.cpuPerIter), cfg.Rounds)
			}
		}
		// A fork and an exec cost the container CPU time: zero would mean
		// the cgroup's accounting was not read.
		if c := rep.spawn[s].cpuPerIter; len(c) > 0 && c[0] <= 0 {
			t.Errorf("%s: spawn loop CPU per iteration %v, want > 0", scenarioNames[s], c[0])
		}
		if s == noSensor {
			continue
		}
		if s == unwatched {
			if n := rep.spawn[s].events + rep.open[s].events; n != 0 {
				t.Errorf("%s: %d events from a container the probe does not watch", scenarioNames[s], n)
			}
			continue
		}
		// A fork and an exec per spawn, a modifyFile per open, unless
		// the kernel counted drops.
		if rep.loopDrops == 0 && (rep.spawn[s].events < uint64(2*cfg.Spawns) || rep.open[s].events < uint64(cfg.Opens)) {
			t.Errorf("%s: %d spawn events for %d spawns, %d open events for %d opens, no drops",
				scenarioNames[s], rep.spawn[s].events, cfg.Spawns, rep.open[s].events, cfg.Opens)
		}
	}
	if u := rep.spawn[matching].unmatched + rep.open[matching].unmatched; u != 0 {
		t.Errorf("%d events no rule matched; every event should match", u)
	}
	if len(rep.pipe) != 4 {
		t.Fatalf("%d pipeline cases, want live and drain for two rule sets", len(rep.pipe))
	}
	for _, st := range rep.pipe {
		m := st.mode
		// Every generator's open events (and its fork and exec before
		// them), unless the kernel counted drops; each handed to the
		// agent (pipeline checks that the agent counted each).
		for _, r := range st.runs {
			if want := cfg.Events; r.Events+int(r.Drops) < want {
				t.Errorf("pipeline %s: %d decided + %d dropped, want at least %d", pipeModeNames[m], r.Events, r.Drops, want)
			}
			if r.ConsumerCPU <= 0 || r.Elapsed <= 0 {
				t.Errorf("pipeline %s measured nothing: %+v", pipeModeNames[m], r)
			}
		}
		if m == drain {
			if d := st.runs[0].Drops; d != 0 {
				t.Errorf("drain: %d drops, but its ring holds every event", d)
			}
		}
		// The log-every-event rule writes a line per event decided:
		// proof that the agent decided each.
		if r := st.runs[0]; st.policy == "log every event" && r.Lines != uint64(r.Events) {
			t.Errorf("%s, log every event: %d lines for %d events", pipeModeNames[m], r.Lines, r.Events)
		}
	}
	for _, m := range []matchResult{rep.rules, rep.example} {
		if m.Events == 0 || m.NativeNs <= 0 || m.RegoNs <= 0 {
			t.Errorf("matcher comparison measured nothing: %+v", m)
		}
	}
	var out strings.Builder
	rep.write(&out)
	for _, want := range []string{"| spawn (fork+exec /bin/true) | sensor + 100 rules |", "| live, 2 generators | policies-example (prod) |", "| drain, 2 generators | log every event |", "| policies-example, cluster prod |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())
}
