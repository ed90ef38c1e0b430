// Package cpustat reads CPU times for the benchmark harnesses: the
// machine-wide times of /proc/stat, to report how much CPU time the
// hypervisor took from this machine (steal) while they measured (on a VM
// whose vCPUs wait for the host, steal moves latency and wall time more
// than anything measured), and the harness process's own CPU time.
package cpustat

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Self returns this process's CPU time so far, user plus system
// (getrusage).
func Self() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// Times is the first line of /proc/stat: all ticks and steal ticks.
type Times struct{ Total, Steal uint64 }

// Read returns the machine's CPU times so far (zero when /proc/stat
// cannot be read).
func Read() Times {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return Times{}
	}
	return parse(string(raw))
}

func parse(stat string) Times {
	line, _, _ := strings.Cut(stat, "\n")
	fields := strings.Fields(line)
	if len(fields) == 0 || fields[0] != "cpu" {
		return Times{}
	}
	var t Times
	// user nice system idle iowait irq softirq steal [guest guest_nice]:
	// guest time is already counted in user and nice.
	for i, f := range fields[1:min(len(fields), 9)] {
		n, _ := strconv.ParseUint(f, 10, 64)
		t.Total += n
		if i == 7 {
			t.Steal = n
		}
	}
	return t
}

// StealPercent is the share of the CPU time between t and later that the
// hypervisor gave to someone else.
func (t Times) StealPercent(later Times) float64 {
	if later.Total <= t.Total {
		return 0
	}
	return 100 * float64(later.Steal-t.Steal) / float64(later.Total-t.Total)
}
