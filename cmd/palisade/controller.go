package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/internal/certpool"
	"github.com/palisade-dev/palisade/internal/gctune"
	"github.com/palisade-dev/palisade/internal/logbuf"
	"github.com/palisade-dev/palisade/reconciler"
	"github.com/palisade-dev/palisade/reconciler/gogit"
)

// controllerFlags are the settings of `palisade controller`. Secrets are
// only ever read from files.
type controllerFlags struct {
	git              gogit.Options
	interval         time.Duration
	listen           string
	tlsCert, tlsKey  string
	clientCAFile     string
	tokenFile        string
	webhookSecret    string
	signKeyFile      string
	signAlg, signKID string
	logLevel         string
	learning         learningFlags
}

func controllerCmd() *cobra.Command {
	var f controllerFlags
	cmd := &cobra.Command{
		Use:   "controller --repo URL",
		Short: "Follow a policy repository and serve its bundles",
		Long: `Follow a policy repository and serve its bundles.

The controller fetches the repository on an interval and on every
authenticated push webhook, validates each new commit, builds one bundle per
cluster (revision = commit SHA) and serves them over the OPA bundle API.
A commit that fails never replaces the bundles being served.

Endpoints (one listener, TLS when --tls-cert-file is set):
  GET  /bundles/{cluster}.tar.gz  bundles (bearer token and/or client certificate)
  POST /hooks/git                 push webhook (HMAC secret; Gitea, GitHub, GitLab)
  GET  /status                    JSON status: last fetch, served revisions, last error
  GET  /metrics                   Prometheus metrics
  GET  /healthz                   liveness

With --learning-dir (learning mode, see palisade learn):
  POST /learning/v1/batches       sensors' observations (ServiceAccount token via TokenReview, or a static token)
  GET  /learning/v1/status        behaviour profiles (same credentials)
  POST /learning/v1/propose       propose a ruleset's learned rules as a pull request (--learning-token-file)
  GET  /learning/v1/rulesets      per-ruleset learning status (--learning-token-file)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runController(ctx, cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.git.URL, "repo", "", "policy repository URL: https://, ssh://, user@host:path or file:// (required)")
	fl.StringVar(&f.git.Branch, "branch", "", "branch to follow (default main)")
	fl.StringVar(&f.git.Tag, "tag", "", "tag to follow instead of a branch")
	fl.StringVar(&f.git.Commit, "commit", "", "commit to pin instead of a branch")
	fl.StringVar(&f.git.Dir, "path", "", "subdirectory of the repository that holds the policy")
	fl.StringVar(&f.git.WorkDir, "workdir", "", "directory for the local clone (default: a new temporary directory)")
	fl.StringVar(&f.git.Username, "git-username", "", "HTTPS user name")
	fl.StringVar(&f.git.PasswordFile, "git-password-file", "", "file holding the HTTPS password or token")
	fl.StringVar(&f.git.CAFile, "git-ca-file", "", "CA bundle for the Git server's certificate")
	fl.StringVar(&f.git.SSHKeyFile, "ssh-key-file", "", "SSH private key file")
	fl.StringVar(&f.git.PassphraseFile, "ssh-passphrase-file", "", "file holding the SSH key's passphrase")
	fl.StringVar(&f.git.KnownHostsFile, "known-hosts-file", "", "known_hosts file (required with SSH)")
	fl.StringVar(&f.git.KeyringFile, "verify-keyring", "", "armored OpenPGP keyring: only commits signed by its keys are reconciled")
	fl.DurationVar(&f.interval, "interval", reconciler.DefaultInterval, "fetch interval without a push webhook")
	fl.StringVar(&f.listen, "listen", ":8443", "address to serve on")
	fl.StringVar(&f.tlsCert, "tls-cert-file", "", "serving certificate (PEM); without it the controller serves plain HTTP")
	fl.StringVar(&f.tlsKey, "tls-key-file", "", "serving certificate's key (PEM)")
	fl.StringVar(&f.clientCAFile, "client-ca-file", "", "CA (PEM) that consumers' client certificates must chain to (mTLS)")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token consumers must present")
	fl.StringVar(&f.webhookSecret, "webhook-secret-file", "", "file holding the push webhook's HMAC secret (without it the webhook is off)")
	fl.StringVar(&f.signKeyFile, "sign-key-file", "", "key (PEM, or an HMAC secret) that signs every bundle")
	fl.StringVar(&f.signAlg, "sign-alg", "RS256", "bundle signing algorithm (RS256, ES256, HS256, ...)")
	fl.StringVar(&f.signKID, "sign-key-id", "palisade", "key id in bundle signatures, as consumers name the key")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	f.learning.register(fl)
	_ = cmd.MarkFlagRequired("repo")
	return cmd
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// newServingLogger is newLogger for the commands that answer admission
// reviews, which log a line per review: the lines are buffered off the
// request path and written at most logbuf.FlushInterval later
// (internal/logbuf says why). stop writes out what remains; the command
// calls it before it returns.
func newServingLogger(w io.Writer, level string) (log *slog.Logger, stop func(), err error) {
	buf := logbuf.New(w)
	if log, err = newLogger(buf, level); err != nil {
		return nil, nil, err
	}
	return log, func() { _ = buf.Stop() }, nil
}

// logGC says how the garbage collector was set for serving decisions
// (internal/gctune).
func logGC(log *slog.Logger, s gctune.Settings) {
	if s.FromEnv {
		log.Info("garbage collector set by the environment", "gogc", s.Percent)
		return
	}
	log.Info("garbage collector set for serving", "gogc", s.Percent, "memoryLimitBytes", s.MemoryLimit, "maxHeapFloorBytes", s.HeapFloor)
}

func readSecretFile(flag, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	raw, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return "", fmt.Errorf("--%s: %s is empty", flag, name)
	}
	return s, nil
}

func runController(ctx context.Context, cmd *cobra.Command, f controllerFlags) error {
	log, err := newLogger(os.Stderr, f.logLevel)
	if err != nil {
		return err
	}
	if f.git.WorkDir == "" {
		dir, err := os.MkdirTemp("", "palisade-controller-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		f.git.WorkDir = dir
	}
	f.git.WorkDir = filepath.Clean(f.git.WorkDir)
	src, err := gogit.New(f.git)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	opts := bundles.ServerOptions{Logger: log, Registerer: reg}
	if opts.Token, err = readSecretFile("token-file", f.tokenFile); err != nil {
		return err
	}
	if f.clientCAFile != "" {
		if opts.ClientCAs, err = certpool.FromFile(f.clientCAFile); err != nil {
			return fmt.Errorf("--client-ca-file: %w", err)
		}
	}
	if f.signKeyFile != "" {
		if opts.Signer, err = bundles.NewSigner(f.signKeyFile, f.signAlg, f.signKID); err != nil {
			return err
		}
	}
	server := bundles.NewServer(opts)
	secret, err := readSecretFile("webhook-secret-file", f.webhookSecret)
	if err != nil {
		return err
	}
	ref := ""
	switch {
	case f.git.Tag != "":
		ref = "refs/tags/" + f.git.Tag
	case f.git.Commit == "":
		ref = "refs/heads/" + cmp.Or(f.git.Branch, "main")
	}
	if f.learning.dir != "" && (f.git.Tag != "" || f.git.Commit != "") {
		return errors.New("--learning-dir needs a followed branch: proposals are pull requests into it")
	}
	learn, err := newLearning(f.learning, f.git, log, reg)
	if err != nil {
		return err
	}
	ropts := reconciler.Options{
		Source: src, Publisher: server, Ref: ref, Interval: f.interval,
		WebhookSecret: []byte(secret), Logger: log, Registerer: reg,
	}
	if learn != nil {
		defer learn.close()
		ropts.OnPolicy = learn.service.SetPolicy
	}
	rec, err := reconciler.New(ropts)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/bundles/", server.Handler())
	mux.Handle("/hooks/git", rec.WebhookHandler())
	mux.Handle("/status", rec.StatusHandler())
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if learn != nil {
		learn.mount(mux)
	}
	httpServer := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second, // slowloris guard; long polls set their own write deadline
		IdleTimeout:       2 * time.Minute,
	}
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return fmt.Errorf("load serving certificate: %w", err)
		}
		httpServer.TLSConfig = server.TLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if httpServer.TLSConfig != nil {
		ln = tls.NewListener(ln, httpServer.TLSConfig)
		scheme = "https"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "palisade controller: following %s, serving %s://%s (bundles at /bundles/{cluster}.tar.gz, webhook /hooks/git, /status, /metrics)\n",
		src.URL(), scheme, ln.Addr())

	errc := make(chan error, 3)
	go func() { errc <- rec.Run(ctx) }()
	if learn != nil {
		go func() {
			if err := learn.run(ctx); err != nil {
				errc <- err
			}
		}()
	}
	go func() {
		if err := httpServer.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	server.Close() // end long polls so that Shutdown does not wait for them
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, httpServer.Shutdown(shutdownCtx))
}
