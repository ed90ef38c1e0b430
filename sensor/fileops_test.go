package sensor

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/palisade-dev/palisade/test/runtime"
)

// fileOpsArg makes the test binary, copied into a container and run there,
// do the file operations TestFileOperations checks (see TestMain): exact
// syscalls, which busybox's applets do not all offer (truncate(2), an
// O_RDONLY|O_TRUNC open, renameat2, linkat, symlinkat).
const fileOpsArg = "palisade-sensor-fileops"

func fileOps() int {
	step := func(what string, err error) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
			os.Exit(1)
		}
	}
	create := func(path string, mode uint32) {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, mode)
		step("create "+path, err)
		_, err = unix.Write(fd, []byte("content\n"))
		step("write "+path, err)
		unix.Close(fd)
	}
	// Modes as given: a create is then one event, so that each event
	// the test wants after it comes from the operation under test.
	unix.Umask(0)
	step("chdir", os.Chdir("/tmp"))
	step("mkdir", os.MkdirAll("/tmp/d/sub", 0o755))
	for _, f := range []struct {
		path string
		mode uint32
	}{{"/tmp/tr", 0o644}, {"/tmp/trx", 0o755}, {"/tmp/otr", 0o644}, {"/tmp/r1", 0o644},
		{"/tmp/e1", 0o755}, {"/tmp/e3", 0o700}, {"/tmp/xa", 0o644}, {"/tmp/xb", 0o755},
		{"/tmp/ln", 0o644}, {"/dev/shm/m1", 0o755}, {"/tmp/o2", 0o644}} {
		create(f.path, f.mode)
	}
	// truncate(2) by path, relative to the cwd: modifyFile, and
	// modifyExecutable for a file with an exec bit.
	step("truncate", unix.Truncate("tr", 1))
	step("truncate x", unix.Truncate("/tmp/trx", 1))
	// ftruncate on a new file: its open is createFile, the truncate
	// modifyFile.
	fd, err := unix.Open("/tmp/ftr", unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	step("open ftr", err)
	step("ftruncate", unix.Ftruncate(fd, 0))
	unix.Close(fd)
	// A read-only open with O_TRUNC truncates.
	fd, err = unix.Open("/tmp/otr", unix.O_RDONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	step("open otr", err)
	unix.Close(fd)
	fd, err = unix.Openat2(unix.AT_FDCWD, "o2", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_TRUNC | unix.O_CLOEXEC})
	step("openat2 o2", err)
	unix.Close(fd)
	// A read-only open without O_TRUNC is no modification.
	fd, err = unix.Open("/tmp/ln", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	step("open ln", err)
	unix.Close(fd)
	// Renames: a file, an executable into a directory by dirfd, one two
	// levels down, an exchange, a directory, and one on another mount.
	step("rename", unix.Rename("/tmp/r1", "/tmp/r2"))
	dfd, err := unix.Open("/tmp/d", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	step("open d", err)
	step("renameat", unix.Renameat(unix.AT_FDCWD, "e1", dfd, "e2"))
	step("renameat2 deep", unix.Renameat2(unix.AT_FDCWD, "/tmp/e3", unix.AT_FDCWD, "d/sub/e4", 0))
	step("renameat2 exchange", unix.Renameat2(unix.AT_FDCWD, "/tmp/xa", unix.AT_FDCWD, "/tmp/xb", unix.RENAME_EXCHANGE))
	step("mkdir dir1", os.Mkdir("/tmp/dir1", 0o755))
	step("rename dir", unix.Rename("/tmp/dir1", "/tmp/dir2"))
	step("rename on /dev/shm", unix.Rename("/dev/shm/m1", "/dev/shm/m2"))
	// Links: createFile at the new name.
	step("link", unix.Link("/tmp/ln", "/tmp/hard"))
	step("linkat", unix.Linkat(unix.AT_FDCWD, "/tmp/ln", dfd, "hard2", 0))
	step("symlink", unix.Symlink("ln", "/tmp/soft"))
	step("symlinkat", unix.Symlinkat("../ln", dfd, "soft2"))
	// A symlink to an executable is no executable itself.
	step("symlink to x", unix.Symlink("trx", "/tmp/sx"))
	step("rename symlink", unix.Rename("/tmp/sx", "/tmp/sy"))
	unix.Close(dfd)
	// A failed rename reports nothing.
	if unix.Rename("/tmp/missing", "/tmp/never") == nil {
		step("rename of a missing file", fmt.Errorf("succeeded"))
	}
	return 0
}

// copyInto copies the running test binary into the container's rootfs.
func copyInto(t *testing.T, c *runtime.Container, name string) {
	t.Helper()
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(c.Rootfs(), name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// Truncate, rename, link and symlink in a watched container report the
// D4C operations bpf/sensor.c maps them to (see the package doc), with
// paths as the container sees them, its cgroup id, and nothing from an
// unwatched container doing the same.
func TestFileOperations(t *testing.T) {
	p := load(t, Options{PollInterval: time.Millisecond})
	watched := runtime.Start(t, runtime.Options{})
	other := runtime.Start(t, runtime.Options{})
	if err := p.Watch(watched.CgroupID()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*runtime.Container{other, watched} {
		copyInto(t, c, "fileops")
		if _, stderr, code := c.Exec(t, "/fileops", fileOpsArg); code != 0 {
			t.Fatalf("file operations in the container: exit %d: %s", code, stderr)
		}
	}
	want := []struct {
		op   Op
		path string
	}{
		{OpModifyFile, "/tmp/tr"},
		{OpModifyExecutable, "/tmp/trx"},
		{OpCreateFile, "/tmp/ftr"},
		{OpModifyFile, "/tmp/ftr"},
		{OpModifyFile, "/tmp/otr"},
		{OpModifyFile, "/tmp/o2"},
		{OpDeleteFile, "/tmp/r1"},
		{OpCreateFile, "/tmp/r2"},
		{OpDeleteFile, "/tmp/e1"},
		{OpCreateExecutable, "/tmp/d/e2"},
		{OpDeleteFile, "/tmp/e3"},
		{OpCreateExecutable, "/tmp/d/sub/e4"},
		{OpCreateExecutable, "/tmp/xa"},
		{OpCreateFile, "/tmp/xb"},
		{OpDeleteFile, "/dev/shm/m1"},
		{OpCreateExecutable, "/dev/shm/m2"},
		{OpCreateFile, "/tmp/hard"},
		{OpCreateFile, "/tmp/d/hard2"},
		{OpCreateFile, "/tmp/soft"},
		{OpCreateFile, "/tmp/d/soft2"},
		{OpCreateFile, "/tmp/sy"},
	}
	evs := collect(t, p, 5*time.Second, func(evs []Event) bool {
		for _, w := range want {
			if _, ok := find(evs, w.op, w.path); !ok {
				return false
			}
		}
		return true
	})
	// The process's exit comes after its last event: wait a little for
	// anything that should not be there.
	evs = append(evs, collect(t, p, 100*time.Millisecond, func([]Event) bool { return false })...)
	for _, w := range want {
		ev, ok := find(evs, w.op, w.path)
		if !ok {
			t.Errorf("no %s event for %s", w.op, w.path)
			continue
		}
		if ev.CgroupID != watched.CgroupID() {
			t.Errorf("%s %s: cgroup id %d, want the container's %d", w.op, w.path, ev.CgroupID, watched.CgroupID())
		}
		if ev.Comm != "fileops" {
			t.Errorf("%s %s: comm %q, want fileops", w.op, w.path, ev.Comm)
		}
	}
	unwanted := []struct {
		op   Op
		path string
	}{
		{OpDeleteFile, "/tmp/xa"}, // an exchange deletes neither file
		{OpDeleteFile, "/tmp/xb"},
		{OpCreateExecutable, "/tmp/r2"},
		{OpCreateFile, "/tmp/d/e2"},
		{OpDeleteFile, "/tmp/missing"},
		{OpCreateFile, "/tmp/never"},
		{OpCreateExecutable, "/tmp/sy"},
	}
	for _, u := range unwanted {
		if _, ok := find(evs, u.op, u.path); ok {
			t.Errorf("unexpected %s %s", u.op, u.path)
		}
	}
	// A rename reads as it happened: the old path's delete, then the
	// new path's create.
	order := map[string]int{}
	for i, ev := range evs {
		if (ev.Op == OpDeleteFile && ev.Path == "/tmp/r1") || (ev.Op == OpCreateFile && ev.Path == "/tmp/r2") {
			order[ev.Path] = i
		}
	}
	if d, c := order["/tmp/r1"], order["/tmp/r2"]; len(order) == 2 && d > c {
		t.Errorf("rename: createFile /tmp/r2 (event %d) before deleteFile /tmp/r1 (event %d)", c, d)
	}
	// Each file the helper created has its create event and then only
	// the events of the operations under test: count them.
	for path, n := range map[string]int{"/tmp/tr": 2, "/tmp/trx": 2, "/tmp/otr": 2, "/tmp/o2": 2,
		"/tmp/ftr": 2, "/tmp/ln": 1, "/tmp/r1": 2, "/tmp/xa": 2} {
		got := 0
		for _, ev := range evs {
			if ev.Path == path {
				got++
			}
		}
		if got != n {
			t.Errorf("%s: %d events, want %d", path, got, n)
		}
	}
	for _, ev := range evs {
		if ev.CgroupID != watched.CgroupID() {
			t.Errorf("event from the unwatched container: %s", dump([]Event{ev}))
		}
		if ev.Path == "/tmp/dir1" || ev.Path == "/tmp/dir2" {
			t.Errorf("a directory's rename reported: %s", dump([]Event{ev}))
		}
	}
	if t.Failed() {
		t.Logf("events:\n%s", dump(evs))
	}
}
