package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/internal/gctune"
	"github.com/palisade-dev/palisade/reconciler"
	"github.com/palisade-dev/palisade/reconciler/gogit"
	"github.com/palisade-dev/palisade/scanner"
)

type upFlags struct {
	cluster    string
	kubeconfig string
	interval   time.Duration
	webhook    string
	bundleAddr string
	failOpen   bool
	name       string
	logLevel   string
	images     imageFlags
}

func upCmd() *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "up [DIR]",
		Short: "Run Palisade on one machine against the cluster in the current kubeconfig",
		Long: `Run the whole of Palisade in one process against the cluster in the current
kubeconfig: the reconciler following the policy repository DIR (default
policies-example), the bundle service, a bundle client, the admission
webhook, which it registers at start and removes on exit, and the continuous
scanner (PolicyReports once their CRDs are installed).

DIR may be a Git repository (its checked-out branch is followed, new commits
are picked up every --interval) or a plain directory, imported into a
temporary repository so that the same Git code path runs.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "policies-example"
			if len(args) == 1 {
				dir = args[0]
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runUp(ctx, cmd, dir, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cluster, "cluster", "", "cluster whose policy to enforce (default: the repository's only cluster)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig (default: $KUBECONFIG, then ~/.kube/config)")
	fl.DurationVar(&f.interval, "interval", 2*time.Second, "how often to look for new commits")
	fl.StringVar(&f.webhook, "webhook-listen", "127.0.0.1:0", "address of the admission webhook (TLS); the API server must reach it")
	fl.StringVar(&f.bundleAddr, "listen", "127.0.0.1:0", "address of the bundle service, /status and /metrics")
	fl.BoolVar(&f.failOpen, "fail-open", false, "admit requests when no decision can be made (default: deny)")
	fl.StringVar(&f.name, "webhook-name", admission.DefaultConfigurationName, "name of the ValidatingWebhookConfiguration to register")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	f.images.register(fl)
	return cmd
}

func runUp(ctx context.Context, cmd *cobra.Command, dir string, f upFlags) error {
	out := cmd.OutOrStdout()
	log, stopLog, err := newServingLogger(os.Stderr, f.logLevel)
	if err != nil {
		return err
	}
	defer stopLog()
	logGC(log, gctune.ServeRequests("/sys/fs/cgroup"))
	// The cluster to enforce: validated here so that a typo fails at once.
	repo, err := loadRepo(cmd, dir)
	if err != nil {
		return err
	}
	cluster := f.cluster
	if cluster == "" {
		if cs := repo.Clusters(); len(cs) == 1 {
			cluster = cs[0]
		} else {
			return fmt.Errorf("%s names clusters %v: choose one with --cluster", dir, cs)
		}
	} else if repo.PolicyFor(cluster) == nil {
		return fmt.Errorf("%s has no policy for cluster %q (clusters: %v)", dir, cluster, repo.Clusters())
	}

	work, err := os.MkdirTemp("", "palisade-up-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	gitOpts := gogit.Options{WorkDir: filepath.Join(work, "clone")}
	if gogit.IsRepository(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		gitOpts.URL = "file://" + abs
		if gitOpts.Branch, err = gogit.HeadBranch(dir); err != nil {
			return err
		}
	} else if gitOpts.URL, err = gogit.ImportDir(dir, filepath.Join(work, "repo")); err != nil {
		return err
	}
	src, err := gogit.New(gitOpts)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	token := randomToken()
	server := bundles.NewServer(bundles.ServerOptions{Token: token, Logger: log, Registerer: reg})
	rec, err := reconciler.New(reconciler.Options{
		Source: src, Publisher: server, Ref: "refs/heads/" + gitOpts.Branch, Interval: f.interval, Logger: log, Registerer: reg,
	})
	if err != nil {
		return err
	}
	bundleLn, err := net.Listen("tcp", f.bundleAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/bundles/", server.Handler())
	mux.Handle("/status", rec.StatusHandler())
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	bundleSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	base := "http://" + bundleLn.Addr().String()

	// Every new revision triggers a full scan; a revision that activates
	// before the scanner exists is scanned by the scanner's first run.
	var sc atomic.Pointer[scanner.Scanner]
	client, err := bundles.NewClient(bundles.ClientOptions{
		URL: base + "/bundles/" + cluster + ".tar.gz", Token: token, CacheDir: filepath.Join(work, "cache"),
		Interval: 10 * time.Second, Logger: log, Registerer: reg,
		OnActivate: func(*bundles.Engine) {
			if s := sc.Load(); s != nil {
				s.Trigger()
			}
		},
	})
	if err != nil {
		return err
	}
	systemNamespace := repo.PolicyFor(cluster).Spec.SystemNamespace
	scan, err := newScanner(f.kubeconfig, f.images, scanner.Options{Engines: client, SystemNamespace: systemNamespace, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	sc.Store(scan)

	handler, kube, err := webhookHandler(ctx, f.kubeconfig, client, f.failOpen, f.images, log, reg)
	if err != nil {
		return err
	}
	webhookLn, err := net.Listen("tcp", f.webhook)
	if err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(webhookLn.Addr().String())
	cert, caBundle, err := admission.LocalCertificate([]string{"localhost"}, []net.IP{net.ParseIP(host)})
	if err != nil {
		return err
	}
	webhookSrv := admission.NewServer("", handler, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil })
	webhookURL := "https://" + webhookLn.Addr().String() + admission.Path

	errc := make(chan error, 5)
	go func() { errc <- rec.Run(ctx) }()
	go func() { errc <- client.Run(ctx) }()
	go func() { errc <- scan.Run(ctx) }()
	go serve(errc, bundleSrv, bundleLn)
	go serve(errc, webhookSrv, tls.NewListener(webhookLn, webhookSrv.TLSConfig))

	// Register the webhook only once a bundle is active, so that a fail
	// closed webhook does not refuse everything while the first commit
	// compiles.
	fmt.Fprintf(out, "palisade up: following %s (cluster %s)\n", src.URL(), cluster)
	if err := waitReady(ctx, client, rec); err != nil {
		return shutdown(err, server, bundleSrv, webhookSrv)
	}
	cfg, err := admission.WebhookConfiguration(admission.WebhookOptions{
		Name: f.name, URL: webhookURL, CABundle: caBundle, SystemNamespace: systemNamespace,
	})
	if err != nil {
		return shutdown(err, server, bundleSrv, webhookSrv)
	}
	if err := registerWebhook(ctx, kube, cfg); err != nil {
		return shutdown(err, server, bundleSrv, webhookSrv)
	}
	fmt.Fprintf(out, "palisade up: bundle revision %s active\n", client.Revision())
	fmt.Fprintf(out, "  admission webhook  %s (ValidatingWebhookConfiguration %q)\n", webhookURL, cfg.Name)
	fmt.Fprintf(out, "  scanner            continuous rules on the policy's schedules, terminate budget %d per namespace\n", scanner.DefaultTerminateBudget)
	fmt.Fprintf(out, "  bundles            %s/bundles/%s.tar.gz\n", base, cluster)
	fmt.Fprintf(out, "  status             %s/status\n", base)
	fmt.Fprintf(out, "  metrics            %s/metrics\n", base)
	fmt.Fprintf(out, "palisade up: ready; Ctrl-C removes the webhook and stops\n")

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	// Remove the webhook first: with nobody answering, a fail-closed
	// webhook would block the cluster.
	delCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if derr := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(delCtx, cfg.Name, metav1.DeleteOptions{}); derr != nil && !apierrors.IsNotFound(derr) {
		err = errors.Join(err, fmt.Errorf("remove webhook configuration %s: %w", cfg.Name, derr))
	} else {
		fmt.Fprintf(out, "palisade up: removed ValidatingWebhookConfiguration %q\n", cfg.Name)
	}
	return shutdown(err, server, bundleSrv, webhookSrv)
}

func serve(errc chan<- error, s *http.Server, ln net.Listener) {
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		errc <- err
	}
}

func shutdown(err error, server *bundles.Server, servers ...*http.Server) error {
	server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		err = errors.Join(err, s.Shutdown(ctx))
	}
	return err
}

// waitReady waits for the first active bundle, or reports why there is none.
func waitReady(ctx context.Context, client *bundles.Client, rec *reconciler.Reconciler) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !client.Ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if st := rec.Status(); st.LastError != nil && st.LastError.Stalled && len(st.Clusters) == 0 {
			return fmt.Errorf("no bundle: %s", st.LastError.Message)
		}
	}
	return nil
}

func registerWebhook(ctx context.Context, kube kubernetes.Interface, c *admissionregistrationv1.ValidatingWebhookConfiguration) error {
	api := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	existing, err := api.Get(ctx, c.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, c, metav1.CreateOptions{})
	case err == nil:
		c.ResourceVersion = existing.ResourceVersion
		_, err = api.Update(ctx, c, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("register webhook configuration %s: %w", c.Name, err)
	}
	return nil
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
