package enforce

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf/rlimit"
)

// guestCgroup is the "container" inside the VM: a cgroup2 directory that
// each scenario's shell moves itself into before running its commands.
const guestCgroup = "/sys/fs/cgroup/palisade-lsm"

// inCgroup runs script with busybox sh in the container cgroup and
// returns its combined output and error.
func inCgroup(script string) (string, error) {
	return inCgroupAt(guestCgroup, script)
}

func inCgroupAt(dir, script string) (string, error) {
	out, err := exec.Command("/bin/sh", "-c",
		"echo $$ > "+dir+"/cgroup.procs || exit 99\n"+script).CombinedOutput()
	return string(out), err
}

// newCgroup creates a cgroup directory and returns its id: on 64-bit
// kernels, the directory's inode number.
func newCgroup(t *testing.T, dir string) uint64 {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create cgroup %s: %v", dir, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// onHost runs script with busybox sh in the root cgroup: the node's own
// processes, which must never be denied.
func onHost(script string) (string, error) {
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	return string(out), err
}

func mustWrite(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

// testLSMGuest is TestLSMInVM inside the guest: it runs as root in the
// root cgroup of Debian's 6.1 kernel, with bpf in the LSM list.
func testLSMGuest(t *testing.T) {
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatalf("remove memlock limit: %v", err)
	}
	cg := newCgroup(t, guestCgroup)

	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, "/etc/palisade/conf", []byte("a\n"), 0o644)
	mustWrite(t, "/srv/keep", []byte("k\n"), 0o644)
	mustWrite(t, "/srv/other", []byte("o\n"), 0o644)
	mustWrite(t, "/srv/linksrc", []byte("l\n"), 0o644)
	mustWrite(t, "/srv/protected/a/b", []byte("p\n"), 0o644)
	// A container's root, for paths as the container sees them.
	mustWrite(t, "/srv/root/bin/busybox", busybox, 0o755)
	mustWrite(t, "/srv/root/sealed/true", busybox, 0o755)
	mustWrite(t, "/srv/root/etc/conf", []byte("c\n"), 0o644)
	mustWrite(t, "/srv/fileless", busybox, 0o755)     // written before any rule
	mustWrite(t, "/srv/blocked/true", busybox, 0o755) // exec blocked by path
	mustWrite(t, "/srv/mod/true", busybox, 0o755)     // modified in the container
	mustWrite(t, "/tmp/script", []byte("#!/bin/sh\necho ran\n"), 0o644)

	l, err := LoadLSM()
	if err != nil {
		t.Fatalf("LoadLSM in the guest: %v", err)
	}
	defer l.Close()
	for _, step := range []error{
		l.Watch(cg),
		l.DriftPrevention(cg, true),
		l.BlockWrite(cg, "/etc/"),
		l.BlockDelete(cg, "/srv/keep"),
		l.BlockDelete(cg, "/srv/protected/"),
		l.BlockExec(cg, "/srv/blocked/true"),
		l.BlockExec(cg, "/sealed/true"),
	} {
		if step != nil {
			t.Fatalf("add rule: %v", step)
		}
	}
	if err := l.BlockExec(cg, "relative"); !errors.Is(err, ErrNotAbsolute) {
		t.Errorf("BlockExec(relative) = %v, want ErrNotAbsolute", err)
	}
	if err := l.BlockWrite(cg, "/"+strings.Repeat("x", maxLSMPath)); !errors.Is(err, ErrPathTooLong) {
		t.Errorf("BlockWrite(too long) = %v, want ErrPathTooLong", err)
	}

	// Renames and links stay on one file system (/srv, /etc on the
	// rootfs): across file systems mv copies and ln fails with EXDEV
	// before any hook.
	// denied: each script fails in the container; allowed: each succeeds.
	type check struct {
		name, script string
		host         bool // run in the root cgroup instead
		wantOK       bool
	}
	run := func(t *testing.T, checks []check) {
		for _, c := range checks {
			run := inCgroup
			if c.host {
				run = onHost
			}
			out, err := run(c.script)
			switch {
			case c.wantOK && err != nil:
				t.Errorf("%s: %v, want success; output:\n%s", c.name, err, out)
			case !c.wantOK && err == nil:
				t.Errorf("%s: succeeded, want denial; output:\n%s", c.name, out)
			case !c.wantOK && !strings.Contains(out, "not permitted") && !strings.Contains(out, "denied"):
				t.Errorf("%s: failed without EPERM in its output:\n%s", c.name, out)
			default:
				t.Logf("%s: ok (err %v) %s", c.name, err, strings.TrimSpace(out))
			}
		}
	}

	t.Run("attached", func(t *testing.T) {
		run(t, []check{
			{name: "a binary copied into /tmp is written", script: "cp /bin/busybox /tmp/true", wantOK: true},
			{name: "exec of a binary written into /tmp is denied (drift)", script: "/tmp/true true"},
			{name: "the host may exec that binary", script: "/tmp/true true", host: true, wantOK: true},
			{name: "an existing executable is appended to", script: "echo >> /srv/mod/true", wantOK: true},
			{name: "exec of a modified executable is denied (drift)", script: "/srv/mod/true true"},
			{name: "an executable the container never wrote runs", script: "/bin/busybox true", wantOK: true},
			{name: "chmod +x is denied", script: "chmod +x /tmp/script"},
			{name: "chmod without an exec bit is allowed", script: "chmod 600 /tmp/script", wantOK: true},
			{name: "write under /etc is denied", script: "echo b >> /etc/palisade/conf"},
			{name: "creating a file under /etc is denied", script: "echo b > /etc/palisade/new"},
			{name: "reading under /etc is allowed", script: "cat /etc/palisade/conf", wantOK: true},
			{name: "write outside /etc is allowed", script: "echo b > /tmp/data", wantOK: true},
			{name: "the host may write under /etc", script: "echo host >> /etc/palisade/conf", host: true, wantOK: true},
			{name: "delete of a blocked path is denied", script: "rm /srv/keep"},
			{name: "delete of another path is allowed", script: "rm /srv/other", wantOK: true},
			{name: "delete under a blocked directory is denied", script: "rm /srv/protected/a/b"},
			{name: "exec of a blocked path is denied", script: "/srv/blocked/true true"},
			// Bypasses: other ways to put a file at, or take it from, a blocked path.
			{name: "renaming a blocked file away is denied", script: "mv /srv/keep /srv/kept"},
			{name: "renaming a file into /etc is denied", script: "echo x > /srv/in && mv /srv/in /etc/palisade/in"},
			{name: "hard-linking into /etc is denied", script: "ln /srv/linksrc /etc/palisade/link"},
			{name: "a symlink into /etc is denied", script: "ln -s /tmp/data /etc/palisade/sym"},
			{name: "mkdir under /etc is denied", script: "mkdir /etc/palisade/dir"},
			{name: "a renamed drifted binary stays denied", script: "mv /tmp/true /tmp/renamed && cd /tmp && ln -s renamed true && /tmp/true true"},
			// Rules name paths as the container sees them: inside its root.
			{name: "write to /etc inside a chroot is denied", script: "chroot /srv/root /bin/busybox sh -c 'echo x >> /etc/conf'"},
			{name: "exec of a blocked path inside a chroot is denied", script: "chroot /srv/root /sealed/true true"},
			{name: "the same file seen from outside the chroot is not /etc", script: "echo x >> /srv/root/etc/conf", wantOK: true},
			{name: "exec of an unlinked file is denied (fileless drift)", script: "exec 3< /srv/fileless && rm /srv/fileless && /proc/self/fd/3 true"},
			{name: "the host may rename into /etc", script: "echo h > /srv/h && mv /srv/h /etc/palisade/h", host: true, wantOK: true},
		})
		d, err := l.Denials()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("denials: %+v", d)
		if d.Drift < 4 || d.Chmod < 1 || d.Write < 7 || d.Delete < 3 || d.Exec < 2 {
			t.Errorf("denials = %+v, want drift ≥ 4, chmod, write ≥ 7, delete ≥ 3, exec ≥ 2", d)
		}
	})
	for _, p := range []string{"/etc/palisade/new", "/etc/palisade/in", "/etc/palisade/link", "/etc/palisade/sym", "/etc/palisade/dir", "/srv/kept"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("a denied operation left %s behind", p)
		}
	}
	t.Run("unwatched", func(t *testing.T) {
		other := guestCgroup + "-other"
		cg2 := newCgroup(t, other)
		if err := l.BlockWrite(cg2, "/etc/"); err != nil {
			t.Fatal(err)
		}
		if out, err := inCgroupAt(other, "echo o >> /etc/palisade/conf"); err == nil {
			t.Errorf("write under /etc in the second cgroup succeeded before Unwatch: %s", out)
		}
		if err := l.Unwatch(cg2); err != nil {
			t.Fatalf("Unwatch: %v", err)
		}
		if out, err := inCgroupAt(other, "echo o >> /etc/palisade/conf"); err != nil {
			t.Errorf("write under /etc in the unwatched cgroup: %v\n%s", err, out)
		}
		if out, err := inCgroup("echo b >> /etc/palisade/conf"); err == nil {
			t.Errorf("Unwatch of another cgroup lifted this one's write rule: %s", out)
		}
	})
	if t.Failed() {
		return
	}

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Watch(cg); !errors.Is(err, ErrClosed) {
		t.Errorf("Watch after Close = %v, want ErrClosed", err)
	}
	if _, err := l.Denials(); !errors.Is(err, ErrClosed) {
		t.Errorf("Denials after Close = %v, want ErrClosed", err)
	}
	t.Run("detached", func(t *testing.T) {
		run(t, []check{
			{name: "exec of the binary written into /tmp runs", script: "/tmp/true true", wantOK: true},
			{name: "exec of the modified executable runs", script: "/srv/mod/true true", wantOK: true},
			{name: "chmod +x works", script: "chmod +x /tmp/script && /tmp/script", wantOK: true},
			{name: "write under /etc works", script: "echo c >> /etc/palisade/conf && echo c > /etc/palisade/new", wantOK: true},
			{name: "renaming into /etc works", script: "mv /srv/in /etc/palisade/in && ln /srv/linksrc /etc/palisade/link && mkdir /etc/palisade/dir", wantOK: true},
			{name: "delete works", script: "rm /srv/keep /srv/protected/a/b", wantOK: true},
			{name: "exec of the blocked path runs", script: "/srv/blocked/true true", wantOK: true},
		})
	})
	fmt.Println("BPF LSM denied drift, chmod +x, /etc writes, delete and exec in the cgroup, and nothing after Close")
}
