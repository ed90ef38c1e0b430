package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/palisade-dev/palisade/internal/toolcache"
)

// EnvBinDir names the directory of etcd, kube-apiserver and kubectl; it
// overrides the cache directory that hack/build-k8s.sh --print-dir names.
const EnvBinDir = "PALISADE_K8S_BIN"

// buildScript prints the cache directory with --print-dir, relative to the
// repository root.
const buildScript = "hack/build-k8s.sh"

var binDir = sync.OnceValues(func() (string, error) {
	dir, err := toolcache.Dir(EnvBinDir, buildScript)
	if err != nil {
		return "", err
	}
	if err := CheckBinaries(dir); err != nil {
		return "", err
	}
	return dir, nil
})

// BinDir returns the directory of etcd, kube-apiserver and kubectl:
// $PALISADE_K8S_BIN, or the cache that `make cluster-bins` fills. It
// returns an error wrapping ErrNoBinaries when a binary is missing there.
func BinDir() (string, error) { return binDir() }

// Start starts a cluster of the test's own in a temporary directory. The
// test fails (never skips) when the binaries are missing. The cluster is
// stopped, and its processes have exited, before the test's temporary
// directories are removed.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	c, err := Launch(context.Background(), Options{BinDir: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster logs:\n%s", c.LogTails())
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	return c
}

// shared is the one cluster that Shared hands every test of a binary.
var shared struct {
	sync.Mutex
	inMain  bool
	started bool
	dir     string
	c       *Cluster
	err     error
}

// Shared returns the test binary's shared cluster, starting it on first
// use; it is stopped when Main returns. Tests that share it keep to
// namespaces of their own. It fails the test when TestMain does not call
// Main, or when the cluster could not start.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.inMain {
		t.Fatal("cluster.Shared: the package's TestMain must return cluster.Main(m)")
	}
	if !shared.started {
		shared.started = true
		shared.c, shared.err = startShared()
	}
	if shared.err != nil {
		t.Fatalf("start shared cluster: %v", shared.err)
	}
	return shared.c
}

func startShared() (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	shared.dir, err = os.MkdirTemp("", "palisade-cluster-")
	if err != nil {
		return nil, err
	}
	return Launch(context.Background(), Options{BinDir: bin, Dir: shared.dir})
}

// Main runs the tests, then stops the shared cluster if one was started
// and removes its directory. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }
func Main(m *testing.M) int {
	shared.Lock()
	shared.inMain = true
	shared.Unlock()
	code := m.Run()

	shared.Lock()
	defer shared.Unlock()
	var errs []error
	if shared.c != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "shared cluster logs:\n%s\n", shared.c.LogTails())
		}
		errs = append(errs, shared.c.Stop())
	}
	if shared.dir != "" {
		errs = append(errs, os.RemoveAll(shared.dir))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(os.Stderr, "stop shared cluster: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
