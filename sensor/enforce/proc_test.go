package enforce

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A thread that raised a permission event may still be on its way off
// the CPU: /proc/<tid>/syscall says "running" until it has left. The
// flags are read once it reads as blocked in the open.
func TestOpenFlagsWaitsForTheThreadToBlock(t *testing.T) {
	arg, ok := openFlagsArg(unix.SYS_OPENAT)
	if !ok || arg < 0 {
		t.Fatalf("openat's flags argument: %d, %v", arg, ok)
	}
	nr := strconv.Itoa(unix.SYS_OPENAT)
	dir := t.TempDir()
	file := filepath.Join(dir, "syscall")
	if err := os.WriteFile(file, []byte("running\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	line := []byte(nr)
	for i := 0; i < 6; i++ {
		if i == arg {
			line = append(line, " 0x441"...) // O_WRONLY|O_CREAT|O_APPEND
		} else {
			line = append(line, " 0x0"...)
		}
	}
	line = append(line, " 0x7ffd 0x7f00\n"...)
	done := make(chan error, 1)
	go func() {
		time.Sleep(2 * time.Millisecond)
		tmp := file + ".new"
		err := os.WriteFile(tmp, line, 0o644)
		if err == nil {
			err = os.Rename(tmp, file)
		}
		done <- err
	}()
	flags, known := openFlags(dir)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !known || flags != syscall.O_WRONLY|syscall.O_CREAT|syscall.O_APPEND {
		t.Errorf("openFlags = %#o, known %v; want O_WRONLY|O_CREAT|O_APPEND, known", flags, known)
	}
}

// A thread that never reads as blocked leaves the flags unknown, after a
// bounded wait.
func TestOpenFlagsUnknownWhileRunning(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "syscall"), []byte("running\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if flags, known := openFlags(dir); known {
		t.Errorf("openFlags of a running thread = %#o, known", flags)
	}
}
