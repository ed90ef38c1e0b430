// Command cluster starts etcd and kube-apiserver for hack/cluster-up.sh with
// the flags, certificates and kubeconfig that test/cluster gives tests, in
// processes that outlive it. It writes <binary>.pid files into the state
// directory for hack/cluster-down.sh and prints, on stdout, the shell lines
// that point kubectl at the cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/palisade-dev/palisade/test/cluster"
)

func main() {
	bin := flag.String("bin", "", "directory of etcd, kube-apiserver and kubectl (hack/build-k8s.sh prints it)")
	dir := flag.String("dir", "", "state directory: certificates, kubeconfig, etcd data, logs, pid files")
	flag.Parse()
	if *bin == "" || *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := up(*bin, *dir); err != nil {
		fmt.Fprintf(os.Stderr, "cluster-up: %v\n", err)
		os.Exit(1)
	}
}

func up(bin, dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for _, name := range []string{cluster.EtcdBinary, cluster.APIServerBinary} {
		if pid, ok := running(dir, name); ok {
			return fmt.Errorf("%s already runs from %s (pid %d): run hack/cluster-down.sh first", name, dir, pid)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c, err := cluster.Launch(context.Background(), cluster.Options{BinDir: bin, Dir: dir, Detach: true})
	if err != nil {
		return err
	}
	var errs []error
	for name, pid := range c.PIDs() {
		errs = append(errs, os.WriteFile(pidFile(dir, name), []byte(strconv.Itoa(pid)+"\n"), 0o644))
	}
	if err := errors.Join(errs...); err != nil {
		return errors.Join(err, c.Stop())
	}
	fmt.Fprintf(os.Stderr, "cluster-up: kube-apiserver at %s, files and logs in %s; stop with hack/cluster-down.sh\n", c.URL, dir)
	fmt.Printf("export KUBECONFIG=%s\n", shellQuote(c.Kubeconfig))
	fmt.Printf("export PATH=%s:\"$PATH\"\n", shellQuote(bin))
	return nil
}

func pidFile(dir, name string) string { return filepath.Join(dir, name+".pid") }

// running reports whether name's pid file names a live process of that
// binary (not a recycled pid).
func running(dir, name string) (int, bool) {
	data, err := os.ReadFile(pidFile(dir, name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	// A binary rebuilt while it runs reads "<path> (deleted)".
	return pid, err == nil && filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == name
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
