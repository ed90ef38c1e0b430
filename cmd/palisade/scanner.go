package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/internal/certpool"
	"github.com/palisade-dev/palisade/internal/gctune"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/scanner"
)

// bundleFlags are the flags of a bundle client, named as `palisade
// admission` names them.
type bundleFlags struct {
	url, tokenFile, caFile, cacheDir string
	verifyKey, verifyAlg, verifyKID  string
}

func (b *bundleFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&b.url, "bundle-url", "", "bundle of this cluster, e.g. https://palisade-controller:8443/bundles/prod.tar.gz (required)")
	fl.StringVar(&b.tokenFile, "bundle-token-file", "", "file holding the bearer token for the bundle service")
	fl.StringVar(&b.caFile, "bundle-ca-file", "", "CA (PEM) of the bundle service's certificate")
	fl.StringVar(&b.cacheDir, "cache-dir", "", "directory for the last good bundle (recommended)")
	fl.StringVar(&b.verifyKey, "verify-key-file", "", "public key (PEM) or HMAC secret that bundles must be signed with")
	fl.StringVar(&b.verifyAlg, "verify-alg", "RS256", "bundle signature algorithm")
	fl.StringVar(&b.verifyKID, "verify-key-id", "palisade", "key id of bundle signatures")
}

// clientOptions reads the token, CA and verification key files.
func (b *bundleFlags) clientOptions(log *slog.Logger, reg prometheus.Registerer) (bundles.ClientOptions, error) {
	o := bundles.ClientOptions{URL: b.url, CacheDir: b.cacheDir, Logger: log, Registerer: reg}
	var err error
	if o.Token, err = readSecretFile("bundle-token-file", b.tokenFile); err != nil {
		return o, err
	}
	if b.caFile != "" {
		pool, err := certpool.FromFile(b.caFile)
		if err != nil {
			return o, fmt.Errorf("--bundle-ca-file: %w", err)
		}
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	if b.verifyKey != "" {
		if o.Verify, err = bundles.LoadVerificationKey(b.verifyKey, b.verifyAlg, b.verifyKID); err != nil {
			return o, err
		}
	}
	return o, nil
}

type scannerFlags struct {
	bundle           bundleFlags
	images           imageFlags
	kubeconfig       string
	systemNamespace  string
	metricsListen    string
	logLevel         string
	terminateBudget  int
	maxReportResults int
}

func scannerCmd() *cobra.Command {
	var f scannerFlags
	cmd := &cobra.Command{
		Use:   "scanner --bundle-url URL",
		Short: "Re-check running pods on the policy's schedules, isolate or terminate violators, write PolicyReports",
		Long: `Re-check running pods against the continuous rules of the bundle the client
fetches from the controller (--bundle-url), on the schedules the policy sets,
and at once whenever a new revision activates. Violations are logged and
recorded as Events; isolate labels the pod and gives its namespace a deny-all
NetworkPolicy; terminate deletes the pod, at most --terminate-budget per
namespace per scan. Results go to wgpolicyk8s.io/v1alpha2 PolicyReports (one
per namespace) and a ClusterPolicyReport, when their CRDs are installed.

  GET  /metrics   Prometheus metrics
  GET  /healthz   liveness
  GET  /readyz    ready once a bundle is active and the caches have synced`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runScanner(ctx, cmd, f)
		},
	}
	fl := cmd.Flags()
	f.bundle.register(fl)
	f.images.register(fl)
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig (default: in-cluster, else $KUBECONFIG)")
	fl.StringVar(&f.systemNamespace, "system-namespace", policy.DefaultSystemNamespace, "namespace Palisade runs in: never scanned or acted on")
	fl.StringVar(&f.metricsListen, "metrics-listen", ":8080", "address of /metrics, /healthz and /readyz (plain HTTP)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.IntVar(&f.terminateBudget, "terminate-budget", scanner.DefaultTerminateBudget, "pods one scan may delete per namespace; the rest are held back and reported")
	fl.IntVar(&f.maxReportResults, "max-report-results", scanner.DefaultMaxReportResults, "results kept in one PolicyReport (the summary counts all)")
	_ = cmd.MarkFlagRequired("bundle-url")
	return cmd
}

func runScanner(ctx context.Context, cmd *cobra.Command, f scannerFlags) error {
	log, err := newLogger(os.Stderr, f.logLevel)
	if err != nil {
		return err
	}
	logGC(log, gctune.Serve("/sys/fs/cgroup"))
	if f.terminateBudget < 1 || f.maxReportResults < 1 {
		return errors.New("--terminate-budget and --max-report-results must be at least 1")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	copts, err := f.bundle.clientOptions(log, reg)
	if err != nil {
		return err
	}
	// OnActivate runs inside client.Run, which starts after sc is set.
	var sc *scanner.Scanner
	copts.OnActivate = func(*bundles.Engine) { sc.Trigger() }
	client, err := bundles.NewClient(copts)
	if err != nil {
		return err
	}
	sc, err = newScanner(f.kubeconfig, f.images, scanner.Options{
		Engines: client, SystemNamespace: f.systemNamespace, TerminateBudget: f.terminateBudget,
		MaxReportResults: f.maxReportResults, Logger: log, Registerer: reg,
	})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !client.Ready() || !sc.Ready() {
			http.Error(w, "no bundle active or caches not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	ln, err := net.Listen("tcp", f.metricsListen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(cmd.OutOrStdout(), "palisade scanner: bundles from %s, system namespace %s, terminate budget %d per namespace, metrics http://%s/metrics\n",
		f.bundle.url, f.systemNamespace, f.terminateBudget, ln.Addr())

	errc := make(chan error, 3)
	go func() { errc <- client.Run(ctx) }()
	go func() { errc <- sc.Run(ctx) }()
	go serve(errc, srv, ln)
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(shutdownCtx))
}

// newScanner connects to the cluster of kubeconfig (empty: in-cluster,
// then $KUBECONFIG, then ~/.kube/config) and returns a scanner on it that
// gathers image verification facts as the webhook does.
func newScanner(kubeconfig string, images imageFlags, o scanner.Options) (*scanner.Scanner, error) {
	cfg, err := loadRESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	// A scan writes in bursts (labels, deletions, Events, reports);
	// client-go's default of 5 requests per second would stretch one over
	// minutes. The API server's priority and fairness still protects it.
	cfg.QPS, cfg.Burst = 50, 100
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	o.Kube = kube
	if o.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	gatherer, err := images.gatherer(kube, o.Logger, o.Registerer)
	if err != nil {
		return nil, err
	}
	o.Images = gatherer
	return scanner.New(o)
}

func loadRESTConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig, Precedence: clientcmd.NewDefaultClientConfigLoadingRules().Precedence},
		&clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	return cfg, nil
}
