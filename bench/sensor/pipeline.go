package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/sensor"
)

// genEnv makes this program (or its test binary) a load generator: it
// opens a file for writing that many times, one modifyFile event each,
// and exits. A Go loop of raw syscalls, not a shell in the container,
// because the shell's ~10 µs an iteration would measure the shell, not
// the pipeline.
const genEnv = "PALISADE_BENCH_SENSOR_GENERATE"

// generate is the generator's main; it returns the exit code.
func generate(count string) int {
	n, err := strconv.Atoi(count)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	f := filepath.Join(os.TempDir(), "palisade-bench-sensor-gen-"+strconv.Itoa(os.Getpid()))
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

// pipelineResult is the ring buffer's throughput to the Events channel.
type pipelineResult struct {
	Events  int
	Elapsed time.Duration
	Drops   uint64
}

// pipeline runs the generator in a cgroup of its own from its first
// instruction (clone3 into the cgroup), so that it is the only watched
// process, and counts its open events until all n arrived: events per
// second from the kernel to the consumer. Waits are bounded by a minute.
func pipeline(tb testing.TB, n int) pipelineResult {
	root, err := sensor.Cgroup2Mount()
	if err != nil {
		tb.Fatalf("find cgroup v2: %v", err)
	}
	dir, err := os.MkdirTemp(root, "palisade-bench-sensor-")
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
		tb.Fatalf("stat cgroup: %v", err)
	}
	p, err := sensor.Load(sensor.Options{})
	if err != nil {
		tb.Fatalf("load sensor: %v", err)
	}
	defer p.Close()
	if err := p.Watch(st.Ino); err != nil {
		tb.Fatalf("watch cgroup: %v", err)
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
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), genEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start generator: %v", err)
	}
	// Dropped events never arrive: the drop count is read now and then so
	// that a lossy run ends instead of waiting for the timeout.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	got := 0
	timeout := time.After(time.Minute)
	for got < n {
		select {
		case ev := <-p.Events():
			if ev.Op == sensor.OpModifyFile || ev.Op == sensor.OpCreateFile {
				got++
			}
		case <-tick.C:
			if d, err := p.Drops(); err == nil && got+int(d) >= n {
				n = got
			}
		case <-timeout:
			cmd.Process.Kill()
			cmd.Wait()
			tb.Fatalf("%d of %d events after a minute", got, n)
		}
	}
	elapsed := time.Since(start)
	if err := cmd.Wait(); err != nil {
		tb.Fatalf("generator: %v", err)
	}
	drops, err := p.Drops()
	if err != nil {
		tb.Fatalf("read drops: %v", err)
	}
	return pipelineResult{Events: got, Elapsed: elapsed, Drops: drops}
}
