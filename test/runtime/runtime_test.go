package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unifiedLine returns the cgroup v2 path in a /proc/<pid>/cgroup file.
func unifiedLine(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "cgroup"))
	if err != nil {
		t.Fatalf("read cgroup of pid %d: %v", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p
		}
	}
	t.Fatalf("pid %d has no cgroup v2 line in:\n%s", pid, b)
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestContainers(t *testing.T) {
	a := Start(t, Options{})
	b := Start(t, Options{Style: CgroupfsStyle})
	_, unified, err := hierarchies()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ids look like containerd's and Kubernetes'", func(t *testing.T) {
		for _, c := range []*Container{a, b} {
			if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(c.ID()) {
				t.Errorf("ID() = %q, want 64 hex digits", c.ID())
			}
			if c.ContainerID() != "containerd://"+c.ID() {
				t.Errorf("ContainerID() = %q", c.ContainerID())
			}
		}
		if a.ID() == b.ID() {
			t.Errorf("two containers share the id %s", a.ID())
		}
		wantA := regexp.MustCompile(`^/kubepods\.slice/kubepods-besteffort\.slice/kubepods-besteffort-pod[0-9a-f_]{36}\.slice/cri-containerd-` + a.ID() + `\.scope$`)
		if !wantA.MatchString(a.CgroupPath()) {
			t.Errorf("systemd-style CgroupPath() = %q", a.CgroupPath())
		}
		if want := "/kubepods/besteffort/pod" + b.PodUID() + "/" + b.ID(); b.CgroupPath() != want {
			t.Errorf("cgroupfs-style CgroupPath() = %q, want %q", b.CgroupPath(), want)
		}
	})

	t.Run("exec returns output and exit code", func(t *testing.T) {
		if out, errOut, code := a.Exec(t, "echo", "hi"); out != "hi\n" || code != 0 {
			t.Errorf("echo hi: %q %q exit %d", out, errOut, code)
		}
		if out, _, code := b.Exec(t, "id", "-u"); out != "0\n" || code != 0 {
			t.Errorf("id -u: %q exit %d", out, code)
		}
		if _, errOut, code := a.Exec(t, "sh", "-c", "echo oops >&2; exit 3"); errOut != "oops\n" || code != 3 {
			t.Errorf("exit 3: stderr %q exit %d", errOut, code)
		}
		// A process left running in the background, its stdio
		// redirected, does not hold Exec up.
		start := time.Now()
		if out, _, code := b.Exec(t, "sh", "-c", "sleep 30 >/dev/null 2>&1 & echo done"); out != "done\n" || code != 0 {
			t.Errorf("background sleep: %q exit %d", out, code)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("exec with a background process took %s", d)
		}
	})

	t.Run("init runs in a pid namespace of its own", func(t *testing.T) {
		host, err := os.Readlink("/proc/self/ns/pid")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{host: true}
		for _, c := range []*Container{a, b} {
			ns, err := os.Readlink(filepath.Join("/proc", itoa(c.PID()), "ns/pid"))
			if err != nil {
				t.Fatal(err)
			}
			if seen[ns] {
				t.Errorf("container %s shares pid namespace %s", c.ID()[:12], ns)
			}
			seen[ns] = true
			if out, _, _ := c.Exec(t, "sh", "-c", "echo $$; readlink /proc/1/exe"); !strings.HasSuffix(out, "/bin/busybox\n") {
				t.Errorf("pid 1 inside is not busybox: %q", out)
			}
		}
	})

	t.Run("cgroup names the container and its id is the v2 inode", func(t *testing.T) {
		for _, c := range []*Container{a, b} {
			got := unifiedLine(t, c.PID())
			if got != c.CgroupPath() || !strings.Contains(got, c.ID()) {
				t.Errorf("init's cgroup %q, want %q", got, c.CgroupPath())
			}
			ino, err := cgroupInode(filepath.Join(unified, c.CgroupPath()))
			if err != nil {
				t.Fatal(err)
			}
			if c.CgroupID() != ino || ino == 0 {
				t.Errorf("CgroupID() = %d, inode %d", c.CgroupID(), ino)
			}
			// A process started later by exec joins the same cgroup, as
			// seen from the host and from inside (no cgroup namespace).
			pid := c.ExecBackground(t, "sleep", "60")
			if got := unifiedLine(t, pid); got != c.CgroupPath() {
				t.Errorf("exec'd process in %q, want %q", got, c.CgroupPath())
			}
			if out, _, _ := c.Exec(t, "cat", "/proc/self/cgroup"); !strings.Contains(out, "0::"+c.CgroupPath()+"\n") {
				t.Errorf("inside, /proc/self/cgroup is %q", out)
			}
		}
		if a.CgroupID() == b.CgroupID() {
			t.Errorf("two containers share cgroup id %d", a.CgroupID())
		}
	})

	t.Run("writes land in the container's own rootfs", func(t *testing.T) {
		name := "/tmp/written-" + a.ID()[:12]
		if _, errOut, code := a.Exec(t, "sh", "-c", "echo data > "+name); code != 0 {
			t.Fatalf("write: exit %d: %s", code, errOut)
		}
		if got, err := os.ReadFile(filepath.Join(a.Rootfs(), name)); err != nil || string(got) != "data\n" {
			t.Errorf("in a's rootfs: %q, %v", got, err)
		}
		for _, p := range []string{filepath.Join(b.Rootfs(), name), name} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s: %v, want it absent", p, err)
			}
		}
		if _, _, code := b.Exec(t, "cat", name); code == 0 {
			t.Errorf("b reads a's file")
		}
	})
}

// TestCleanup starts containers in a subtest, so that their Cleanups run
// when it ends, and checks that neither runc state nor cgroup directories
// survive them.
func TestCleanup(t *testing.T) {
	hier, _, err := hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	var gone []*Container
	t.Run("run", func(t *testing.T) {
		for _, s := range []CgroupStyle{SystemdStyle, CgroupfsStyle} {
			c := Start(t, Options{Style: s})
			c.ExecBackground(t, "sleep", "60")
			gone = append(gone, c)
		}
	})
	out, err := exec.Command("runc", "--root", StateRoot, "list", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("runc list: %v: %s", err, out)
	}
	for _, c := range gone {
		if strings.Contains(string(out), c.ID()) {
			t.Errorf("runc still lists %s", c.ID())
		}
		if running(c.PID()) {
			t.Errorf("init %d still runs", c.PID())
		}
		// The container's and the pod's directories are gone everywhere.
		for _, h := range hier {
			for _, p := range []string{c.CgroupPath(), filepath.Dir(c.CgroupPath())} {
				if _, err := os.Stat(filepath.Join(h, p)); !os.IsNotExist(err) {
					t.Errorf("cgroup %s: %v, want it removed", filepath.Join(h, p), err)
				}
			}
		}
	}
}

// running reports whether pid is a live process: a killed init may stay a
// zombie until the host's pid 1 reaps it, which is no concern of ours.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X')
}

// TestContainersOfOnePod: containers given the same PodUID share the pod's
// cgroup directory, which outlives the first container's removal and not
// the last one's.
func TestContainersOfOnePod(t *testing.T) {
	hier, _, err := hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	var pod string
	t.Run("run", func(t *testing.T) {
		first := Start(t, Options{Args: []string{"sh", "-c", "echo started; exec sleep 3600"}})
		pod = filepath.Dir(first.CgroupPath())
		t.Run("second", func(t *testing.T) {
			second := Start(t, Options{PodUID: first.PodUID()})
			if got := filepath.Dir(second.CgroupPath()); got != pod {
				t.Errorf("second container in pod %s, want %s", got, pod)
			}
		})
		// The second container's cleanup has run: the pod is still there.
		for _, h := range hier {
			if _, err := os.Stat(filepath.Join(h, pod)); err != nil {
				t.Errorf("pod cgroup gone while a container runs: %v", err)
			}
		}
		if out, _, _ := first.Exec(t, "echo", "alive"); out != "alive\n" {
			t.Errorf("first container after the second's removal: %q", out)
		}
		if b, _ := os.ReadFile(filepath.Join(first.bundle, "init.log")); string(b) != "started\n" {
			t.Errorf("init output %q, want Options.Args to have run", b)
		}
	})
	for _, h := range hier {
		if _, err := os.Stat(filepath.Join(h, pod)); !os.IsNotExist(err) {
			t.Errorf("pod cgroup %s: %v, want it removed", filepath.Join(h, pod), err)
		}
	}
}
