package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/reconciler"
)

// palisadeBin is the binary under test, built once by TestMain.
var palisadeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "palisade-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	palisadeBin = filepath.Join(dir, "palisade")
	build := exec.Command("go", "build", "-o", palisadeBin, "github.com/palisade-dev/palisade/cmd/palisade")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build palisade:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// writeFile writes a secret or key file for the controller.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer collects a process's output for the test log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// controller is a running `palisade controller` process.
type controller struct {
	URL    string
	Addr   string
	cmd    *exec.Cmd
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan struct{}
}

// startController runs the binary with args plus --listen on a free
// loopback port, and waits until it answers /healthz.
func startController(t testing.TB, args ...string) *controller {
	t.Helper()
	return startControllerAt(t, freeAddr(t), args...)
}

// startControllerAt is startController on a given address (a restart).
func startControllerAt(t testing.TB, addr string, args ...string) *controller {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &controller{URL: "http://" + addr, Addr: addr, out: &syncBuffer{}, cancel: cancel, done: make(chan struct{})}
	c.cmd = exec.CommandContext(ctx, palisadeBin, append([]string{"controller", "--listen", addr}, args...)...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	c.cmd.Cancel = func() error { return c.cmd.Process.Signal(os.Interrupt) }
	c.cmd.WaitDelay = 10 * time.Second
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("controller output:\n%s", c.out)
		}
	})
	waitFor(t, 30*time.Second, "controller /healthz", func() bool {
		resp, err := http.Get(c.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return c
}

// Stop interrupts the controller and waits for it to exit.
func (c *controller) Stop() {
	c.cancel()
	<-c.done
}

func (c *controller) status(t testing.TB) reconciler.Status {
	t.Helper()
	resp, err := http.Get(c.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st reconciler.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// push calls the push webhook as GitHub would.
func (c *controller) push(t testing.TB, secret, commit string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"ref": "refs/heads/main", "after": commit})
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, c.URL+"/hooks/git", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("webhook: %d %s", resp.StatusCode, msg)
	}
}

// bundleETag fetches the served bundle of a cluster and returns its ETag.
func (c *controller) bundleETag(t testing.TB, token, cluster string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.URL+"/bundles/"+cluster+".tar.gz", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET bundle: %d", resp.StatusCode)
	}
	return resp.Header.Get("ETag")
}

func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func readExample(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile("../../policies-example/clusters/prod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func replaceOnce(t testing.TB, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not found", old)
	}
	return strings.Replace(s, old, new, 1)
}
