package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/internal/certpool"
	"github.com/palisade-dev/palisade/internal/gctune"
)

type admissionFlags struct {
	bundleURL, tokenFile, bundleCA, cacheDir string
	verifyKey, verifyAlg, verifyKID          string
	listen, metricsListen                    string
	tlsCert, tlsKey                          string
	selfManaged                              bool
	namespace, service, secretName           string
	webhookConfigs                           []string
	kubeconfig                               string
	failOpen                                 bool
	logLevel                                 string
	images                                   imageFlags
}

func admissionCmd() *cobra.Command {
	var f admissionFlags
	cmd := &cobra.Command{
		Use:   "admission --bundle-url URL",
		Short: "Serve the validating admission webhook from the controller's bundles",
		Long: `Serve the validating admission webhook. Decisions come from the bundle the
client fetches from the controller (--bundle-url), verified when --verify-key-file
is set; the last good bundle is kept in --cache-dir and used when the
controller is unreachable, across restarts.

The serving certificate comes from --tls-cert-file/--tls-key-file (re-read when
they change) or, with --self-managed-certs, from a CA and certificate that the
webhook keeps in a Secret, patching the caBundle of its own webhook
configurations.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runAdmission(ctx, cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.bundleURL, "bundle-url", "", "bundle of this cluster, e.g. https://palisade-controller:8443/bundles/prod.tar.gz (required)")
	fl.StringVar(&f.tokenFile, "bundle-token-file", "", "file holding the bearer token for the bundle service")
	fl.StringVar(&f.bundleCA, "bundle-ca-file", "", "CA (PEM) of the bundle service's certificate")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "directory for the last good bundle (recommended)")
	fl.StringVar(&f.verifyKey, "verify-key-file", "", "public key (PEM) or HMAC secret that bundles must be signed with")
	fl.StringVar(&f.verifyAlg, "verify-alg", "RS256", "bundle signature algorithm")
	fl.StringVar(&f.verifyKID, "verify-key-id", "palisade", "key id of bundle signatures")
	fl.StringVar(&f.listen, "listen", ":9443", "webhook address (TLS)")
	fl.StringVar(&f.metricsListen, "metrics-listen", ":8080", "address of /metrics (plain HTTP)")
	fl.StringVar(&f.tlsCert, "tls-cert-file", "", "serving certificate (PEM), re-read when it changes")
	fl.StringVar(&f.tlsKey, "tls-key-file", "", "serving certificate's key (PEM)")
	fl.BoolVar(&f.selfManaged, "self-managed-certs", false, "generate and rotate the serving certificate in a Secret and patch the webhook's caBundle")
	fl.StringVar(&f.namespace, "namespace", admission.DefaultSystemNamespace, "namespace of the webhook's Service and Secret (self-managed certificates)")
	fl.StringVar(&f.service, "service", "palisade-admission", "the webhook's Service name (self-managed certificates)")
	fl.StringVar(&f.secretName, "secret-name", admission.DefaultSecretName, "Secret holding the CA and certificate (self-managed certificates)")
	fl.StringSliceVar(&f.webhookConfigs, "webhook-configuration", []string{admission.DefaultConfigurationName}, "ValidatingWebhookConfigurations whose caBundle to patch (self-managed certificates)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig (default: in-cluster, else $KUBECONFIG)")
	fl.BoolVar(&f.failOpen, "fail-open", false, "admit requests when no decision can be made (default: deny)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	f.images.register(fl)
	_ = cmd.MarkFlagRequired("bundle-url")
	return cmd
}

func runAdmission(ctx context.Context, cmd *cobra.Command, f admissionFlags) error {
	log, stopLog, err := newServingLogger(os.Stderr, f.logLevel)
	if err != nil {
		return err
	}
	defer stopLog()
	logGC(log, gctune.ServeRequests("/sys/fs/cgroup"))
	if (f.tlsCert == "") == !f.selfManaged {
		return errors.New("set --tls-cert-file and --tls-key-file, or --self-managed-certs")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	copts := bundles.ClientOptions{URL: f.bundleURL, CacheDir: f.cacheDir, Logger: log, Registerer: reg}
	if copts.Token, err = readSecretFile("bundle-token-file", f.tokenFile); err != nil {
		return err
	}
	if f.bundleCA != "" {
		pool, err := certpool.FromFile(f.bundleCA)
		if err != nil {
			return fmt.Errorf("--bundle-ca-file: %w", err)
		}
		copts.TLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	if f.verifyKey != "" {
		if copts.Verify, err = bundles.LoadVerificationKey(f.verifyKey, f.verifyAlg, f.verifyKID); err != nil {
			return err
		}
	}
	client, err := bundles.NewClient(copts)
	if err != nil {
		return err
	}

	handler, kube, err := webhookHandler(ctx, f.kubeconfig, client, f.failOpen, f.images, log, reg)
	if err != nil {
		return err
	}

	errc := make(chan error, 4)
	var getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	if f.selfManaged {
		m, err := admission.NewCertManager(admission.CertManagerOptions{
			Client: kube, Namespace: f.namespace, SecretName: f.secretName,
			DNSNames: admission.ServiceDNSNames(f.service, f.namespace), WebhookConfigurations: f.webhookConfigs, Logger: log,
		})
		if err != nil {
			return err
		}
		if err := m.Reconcile(ctx); err != nil {
			return err
		}
		go func() { errc <- m.Run(ctx) }()
		getCert = m.GetCertificate
	} else {
		files, err := admission.NewCertFiles(f.tlsCert, f.tlsKey, log)
		if err != nil {
			return err
		}
		getCert = files.GetCertificate
	}
	webhook := admission.NewServer("", handler, getCert)
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	metricsLn, err := net.Listen("tcp", f.metricsListen)
	if err != nil {
		return err
	}
	metrics := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(cmd.OutOrStdout(), "palisade admission: webhook https://%s%s, bundles from %s, metrics http://%s/metrics\n",
		ln.Addr(), admission.Path, f.bundleURL, metricsLn.Addr())

	go func() { errc <- client.Run(ctx) }()
	go serve(errc, webhook, tls.NewListener(ln, webhook.TLSConfig))
	go serve(errc, metrics, metricsLn)
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, webhook.Shutdown(shutdownCtx), metrics.Shutdown(shutdownCtx))
}
