package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/sensor"
	"github.com/palisade-dev/palisade/sensor/agent"
	"github.com/palisade-dev/palisade/sensor/enforce"
	"github.com/palisade-dev/palisade/sensor/pods"
)

type sensorFlags struct {
	bundle                 bundleFlags
	nodeName, kubeconfig   string
	clusterID, clusterName string
	listen, alertsFile     string
	observationsFile       string
	logLevel               string
	learning               sensorLearningFlags
}

func sensorCmd() *cobra.Command {
	var f sensorFlags
	cmd := &cobra.Command{
		Use:   "sensor --bundle-url URL",
		Short: "Watch and enforce the runtime rulesets inside this node's containers (eBPF)",
		Long: `Load the eBPF sensor, watch the containers of this node's pods (an
informer on spec.nodeName), decide on each file and process event with the
RuntimeRulesets of the bundle the client fetches (--bundle-url), and act:
log → the event stream (the log, at info), alert → the alert stream
(--alerts-file, JSON lines) and a rate-limited Event on the pod, block → BPF
LSM where the kernel allows it, else fanotify permission events (writes,
exec patterns) and the exec killer (exact exec paths); a block the node
cannot enforce is reported on /status, never ignored. Learning rulesets
write observations (--observations-file). The pipeline is package
sensor/agent. Needs CAP_BPF, CAP_PERFMON and
CAP_SYS_ADMIN, the host pid namespace and the host's cgroup v2 mount.

  GET  /status    features, backends per operation, counts, unenforced blocks
  GET  /metrics   Prometheus metrics
  GET  /healthz   liveness
  GET  /readyz    ready once a bundle is active and the pods are listed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runSensor(ctx, cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	f.bundle.register(fl)
	fl.StringVar(&f.nodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME, the downward API's spec.nodeName)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig (default: in-cluster, else $KUBECONFIG)")
	fl.StringVar(&f.clusterID, "cluster-id", "", "kubernetesClusterId selector fact of every container")
	fl.StringVar(&f.clusterName, "cluster-name", "", "kubernetesClusterName selector fact of every container")
	fl.StringVar(&f.listen, "listen", ":8080", "address of /status, /metrics, /healthz and /readyz (plain HTTP)")
	fl.StringVar(&f.alertsFile, "alerts-file", "", "file the alert stream is appended to, JSON lines (default: stdout)")
	fl.StringVar(&f.observationsFile, "observations-file", "", "file learning-mode observations are appended to, JSON lines (default: stdout)")
	f.learning.register(fl)
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	_ = cmd.MarkFlagRequired("bundle-url")
	return cmd
}

// runSensor wires the sensor's pieces and runs them until ctx is done,
// then detaches them in reverse order. Tests call it in-process.
func runSensor(ctx context.Context, stdout io.Writer, f sensorFlags) (err error) {
	log, err := newLogger(os.Stderr, f.logLevel)
	if err != nil {
		return err
	}
	if f.nodeName == "" {
		return errors.New("--node-name (or $NODE_NAME) is required: the sensor watches this node's pods only")
	}
	alerts, closeAlerts, err := openStream(f.alertsFile, stdout)
	if err != nil {
		return fmt.Errorf("--alerts-file: %w", err)
	}
	defer closeAlerts()
	observations, closeObs, err := openStream(f.observationsFile, stdout)
	if err != nil {
		return fmt.Errorf("--observations-file: %w", err)
	}
	defer closeObs()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg, err := loadRESTConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}

	// Detach in reverse order of attaching: stop blocking first (the
	// agent's backends), then stop watching, so that nothing stays
	// blocked without a sensor deciding.
	probe, err := sensor.Load(sensor.Options{})
	if err != nil {
		return fmt.Errorf("load sensor: %w", err)
	}
	// Consume ends when Close closes the event stream; waiting for it
	// keeps the streams open until the last event is written.
	done := make(chan struct{})
	defer func() { err = errors.Join(err, probe.Close()); <-done }()

	observer := agent.Observers{agent.JSONLines(observations, func(err error) { log.Error("write observation", "error", err) })}
	learn, err := newLearningSender(f.learning, f.nodeName, log, reg)
	if err != nil {
		return err
	}
	if learn != nil {
		observer = append(observer, learn.observer())
	}
	attr := pods.New(pods.Options{Client: kube, NodeName: f.nodeName, ClusterID: f.clusterID, ClusterName: f.clusterName, Logger: log, Registerer: reg})
	ag := agent.New(agent.Options{
		NodeName: f.nodeName, Features: enforce.Probe(), Logger: log, Registerer: reg,
		Alerts: alerts, Kube: kube, Watcher: probe, Containers: attr,
		Observer: observer,
	})
	defer func() { err = errors.Join(err, ag.Close()) }()
	if err := ag.LoadBackends(); err != nil {
		log.Error("some blocking backends did not load: their blocks are reported unenforced", "error", err)
	}

	copts, err := f.bundle.clientOptions(log, reg)
	if err != nil {
		return err
	}
	copts.OnActivate = ag.Activate
	client, err := bundles.NewClient(copts)
	if err != nil {
		return err
	}
	attr.OnContainer(ag.OnContainer)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/status", ag.StatusHandler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !client.Ready() || !attr.HasSynced() {
			http.Error(w, "no bundle active or pods not listed", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "palisade sensor: node %s, bundles from %s, status http://%s/status\n", f.nodeName, f.bundle.url, ln.Addr())

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	go func() { errc <- client.Run(runCtx) }()
	go func() { errc <- attr.Run(runCtx) }()
	go serve(errc, srv, ln)
	go func() { defer close(done); ag.ConsumeBatches(probe.Batches()) }()
	// The learning sender ends with a last flush and send once runCtx
	// ends: waited for, so a clean restart loses no observation.
	learnDone := make(chan struct{})
	go func() {
		defer close(learnDone)
		if learn == nil {
			return
		}
		if err := learn.run(runCtx); err != nil {
			log.Error("learning observations not delivered", "error", err)
		}
	}()
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	<-learnDone
	shutdownCtx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	return errors.Join(err, srv.Shutdown(shutdownCtx))
}

// openStream opens a JSON-lines stream: name appended to, or w when
// name is empty.
func openStream(name string, w io.Writer) (io.Writer, func(), error) {
	if name == "" {
		return w, func() {}, nil
	}
	fh, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, nil, err
	}
	return fh, func() { _ = fh.Close() }, nil
}
