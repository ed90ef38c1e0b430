package cpustat

import "testing"

func TestStealPercent(t *testing.T) {
	before := parse("cpu  100 0 50 800 10 0 5 35 7 0\ncpu0 1 2 3\n")
	if before != (Times{Total: 1000, Steal: 35}) {
		t.Fatalf("parse = %+v, want total 1000 (guest left out), steal 35", before)
	}
	after := parse("cpu  150 0 60 900 10 0 5 75 9 0\n")
	if got := before.StealPercent(after); got != 20 {
		t.Errorf("steal = %v%%, want 20%% (40 of 200 ticks)", got)
	}
	if got := before.StealPercent(before); got != 0 {
		t.Errorf("no time passed: steal = %v%%, want 0", got)
	}
	if got := parse("intr 1 2\n"); got != (Times{}) {
		t.Errorf("not a cpu line: %+v", got)
	}
}
