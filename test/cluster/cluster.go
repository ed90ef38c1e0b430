package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The binaries a cluster runs, looked up in Options.BinDir.
const (
	EtcdBinary      = "etcd"
	APIServerBinary = "kube-apiserver"
	KubectlBinary   = "kubectl"
)

// Files and folders a cluster owns in Options.Dir.
const (
	KubeconfigFile = "kubeconfig"
	etcdDataDir    = "etcd"
	kubectlCache   = "kubectl-cache"
	pkiDir         = "pki"
)

// The service network: no kube-proxy runs, but the API server allocates
// ClusterIPs from it and the serving certificate names its first address.
const (
	serviceCIDR = "10.0.0.0/24"
	serviceIP   = "10.0.0.1"
)

// Defaults of Options.
const (
	// Start to ready takes 2–3 s on an idle 2-core machine; the margin is
	// for a machine busy compiling or running other test binaries.
	defaultReadyTimeout = 60 * time.Second
	// The API server drains for about 5 s after SIGTERM; past this the
	// process is killed.
	stopTimeout = 30 * time.Second
	// A free port can be taken between choosing it and the bind.
	launchAttempts = 3
	// Bounds one kubectl run; its requests time out well before.
	kubectlTimeout = 2 * time.Minute
)

// Options says where a cluster's binaries and files are.
type Options struct {
	// BinDir holds etcd, kube-apiserver and kubectl (hack/build-k8s.sh's
	// output directory).
	BinDir string
	// Dir receives the certificates, the kubeconfig, etcd's data and the
	// processes' logs (<binary>.log). Launch replaces what it owns there.
	Dir string
	// Detach starts the processes in a session of their own so that they
	// outlive the caller (hack/cluster-up.sh). Otherwise they are killed
	// when the calling process exits, even if Stop is never called.
	Detach bool
	// ReadyTimeout bounds the wait for /readyz; zero means 60 s.
	ReadyTimeout time.Duration
}

// Cluster is a running etcd and kube-apiserver on loopback.
type Cluster struct {
	// Kubeconfig is the path of a kubeconfig with a cluster-admin client
	// certificate (group system:masters) and the cluster's CA.
	Kubeconfig string
	// RESTConfig is the same identity, for client-go.
	RESTConfig *rest.Config
	// URL is the API server's address, https://127.0.0.1:<port>.
	URL string
	// Dir holds the cluster's files (see Options.Dir).
	Dir string

	kubectl  string
	procs    []*process // in start order; stopped in reverse
	stopOnce sync.Once
	stopErr  error
}

// ErrNoBinaries is returned when Options.BinDir lacks a binary.
var ErrNoBinaries = errors.New("cluster binaries not built: run `make cluster-bins` (hack/build-k8s.sh; about 8 minutes the first time)")

// errPortTaken marks a start that lost a chosen port to another process.
var errPortTaken = errors.New("port already in use")

// Launch starts etcd and kube-apiserver on free loopback ports with a
// freshly generated PKI, writes the kubeconfig and returns once /readyz
// passes and the default namespace exists. On error nothing is left running.
// The caller stops the cluster with Stop.
func Launch(ctx context.Context, opts Options) (*Cluster, error) {
	if err := CheckBinaries(opts.BinDir); err != nil {
		return nil, err
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = defaultReadyTimeout
	}
	for attempt := 1; ; attempt++ {
		c, err := launch(ctx, opts)
		if errors.Is(err, errPortTaken) && attempt < launchAttempts {
			continue
		}
		return c, err
	}
}

// CheckBinaries returns ErrNoBinaries, naming dir, unless dir holds the
// three binaries.
func CheckBinaries(dir string) error {
	for _, b := range []string{EtcdBinary, APIServerBinary, KubectlBinary} {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s missing in %s: %w", b, dir, ErrNoBinaries)
		}
	}
	return nil
}

func launch(ctx context.Context, opts Options) (c *Cluster, err error) {
	for _, name := range []string{etcdDataDir, pkiDir, kubectlCache, KubeconfigFile} {
		if err := os.RemoveAll(filepath.Join(opts.Dir, name)); err != nil {
			return nil, fmt.Errorf("clean %s: %w", opts.Dir, err)
		}
	}
	p, err := writePKI(opts.Dir)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]
	c = &Cluster{
		URL:        "https://127.0.0.1:" + strconv.Itoa(apiPort),
		Dir:        opts.Dir,
		Kubeconfig: filepath.Join(opts.Dir, KubeconfigFile),
		kubectl:    filepath.Join(opts.BinDir, KubectlBinary),
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
			c = nil
		}
	}()

	if err := writeKubeconfig(c.Kubeconfig, c.URL, p); err != nil {
		return c, err
	}
	c.RESTConfig, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return c, fmt.Errorf("load %s: %w", c.Kubeconfig, err)
	}
	// Tests create objects in bursts; client-go's default of 5 requests
	// per second would make them wait on the client, not the server.
	c.RESTConfig.QPS, c.RESTConfig.Burst = 200, 400

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	etcd, err := startProcess(opts, EtcdBinary,
		"--name=palisade",
		"--data-dir="+filepath.Join(opts.Dir, etcdDataDir),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=palisade="+peerURL,
		// A throwaway cluster: durability buys nothing, fsync costs seconds.
		"--unsafe-no-fsync",
	)
	if err != nil {
		return c, err
	}
	c.procs = append(c.procs, etcd)

	file := func(name string) string { return filepath.Join(opts.Dir, name) }
	api, err := startProcess(opts, APIServerBinary,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		// No other API server shares the kubernetes Service's endpoints,
		// and the reconciler rejects a loopback advertise address.
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+file(servingCertFile),
		"--tls-private-key-file="+file(servingKeyFile),
		"--client-ca-file="+file(caCertFile),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+file(saPubFile),
		"--service-account-signing-key-file="+file(saKeyFile),
		"--service-cluster-ip-range="+serviceCIDR,
		"--authorization-mode=RBAC",
		// Palisade's own admission decides about privileged pods; without
		// this flag the API server rejects them before any webhook runs.
		"--allow-privileged=true",
		// No controller-manager creates the default ServiceAccount, which
		// this plugin would require of every pod.
		"--disable-admission-plugins=ServiceAccount",
		"--profiling=false",
	)
	if err != nil {
		return c, err
	}
	c.procs = append(c.procs, api)

	if err := c.waitReady(ctx, opts.ReadyTimeout); err != nil {
		return c, err
	}
	return c, nil
}

// waitReady polls /readyz, then the default namespace (created by a
// controller inside the API server just after it starts serving), until
// both answer 200, a process exits, or the timeout passes.
func (c *Cluster) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client, err := rest.HTTPClientFor(c.RESTConfig)
	if err != nil {
		return fmt.Errorf("client for %s: %w", c.URL, err)
	}
	client.Timeout = 5 * time.Second
	var last string
	for _, path := range []string{"/readyz", "/api/v1/namespaces/default"} {
		for {
			status, err := get(ctx, client, c.URL+path)
			if err == nil && status == http.StatusOK {
				break
			}
			if err != nil {
				last = err.Error()
			} else {
				last = fmt.Sprintf("GET %s: %s", path, http.StatusText(status))
			}
			for _, p := range c.procs {
				if p.exited() {
					return p.exitError()
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for %s%s (last: %s); %s", c.URL, path, last, c.procs[len(c.procs)-1].logTail())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func get(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// Stop stops the API server, then etcd: SIGTERM, and SIGKILL after 30 s.
// It returns when both have exited. Calling it again returns the first
// result. It reports only failures to stop, not how a process exited.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		for i := len(c.procs) - 1; i >= 0; i-- {
			errs = append(errs, c.procs[i].stop(stopTimeout))
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// PIDs returns the process ids of etcd and kube-apiserver by binary name.
func (c *Cluster) PIDs() map[string]int {
	m := make(map[string]int, len(c.procs))
	for _, p := range c.procs {
		m[p.name] = p.cmd.Process.Pid
	}
	return m
}

// Kubectl runs kubectl against the cluster and returns its output.
func (c *Cluster) Kubectl(args ...string) (stdout, stderr string, err error) {
	return c.KubectlInput("", args...)
}

// KubectlInput runs kubectl with input on its standard input, as
// `apply -f -` needs.
func (c *Cluster) KubectlInput(input string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	full := append([]string{
		"--kubeconfig=" + c.Kubeconfig,
		// Not ~/.kube/cache: another cluster may have had this port.
		"--cache-dir=" + filepath.Join(c.Dir, kubectlCache),
		"--request-timeout=30s",
	}, args...)
	cmd := exec.CommandContext(ctx, c.kubectl, full...)
	cmd.Stdin = strings.NewReader(input)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), nil
}

func writeKubeconfig(path, url string, p *pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["palisade"] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: p.caCert}
	cfg.AuthInfos[adminUser] = &clientcmdapi.AuthInfo{ClientCertificateData: p.adminCert, ClientKeyData: p.adminKey}
	cfg.Contexts["palisade"] = &clientcmdapi.Context{Cluster: "palisade", AuthInfo: adminUser}
	cfg.CurrentContext = "palisade"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		// Held open until all are chosen, so that the n are distinct.
		defer func() { _ = l.Close() }()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// process is a started etcd or kube-apiserver.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result, set before done closes
}

func startProcess(opts Options, name string, args ...string) (*process, error) {
	logPath := filepath.Join(opts.Dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", logPath, err)
	}
	cmd := exec.Command(filepath.Join(opts.BinDir, name), args...)
	cmd.Dir = opts.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr(opts.Detach)
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	// The child has its own descriptor now.
	_ = logFile.Close()
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes an exit during start, with the end of the log.
func (p *process) exitError() error {
	tail := p.logTail()
	err := fmt.Errorf("%s exited during start (%v); %s", p.name, p.err, tail)
	if strings.Contains(tail, "address already in use") {
		return fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return err
}

func (p *process) stop(timeout time.Duration) error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// logTailLines is how much of a log an error quotes.
const logTailLines = 15

// logTail returns the last lines of the process's log, labelled.
func (p *process) logTail() string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("no %s log: %v", p.name, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return fmt.Sprintf("last lines of %s:\n%s", p.log, strings.Join(lines, "\n"))
}

// LogTails returns the last lines of each process's log, for a test
// that failed.
func (c *Cluster) LogTails() string {
	var parts []string
	for _, p := range c.procs {
		parts = append(parts, p.logTail())
	}
	return strings.Join(parts, "\n")
}
