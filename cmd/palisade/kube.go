package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/pflag"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/palisade-dev/palisade/admission"
	"github.com/palisade-dev/palisade/imageverify"
)

// imageFlags configure image verification (imageverify), shared by the
// commands that decide on pods.
type imageFlags struct {
	registryConfig  string        // dockerconfigjson with Palisade's own registry credentials
	insecure        bool          // allow plain-HTTP registries
	timeout         time.Duration // per image
	readPullSecrets bool          // read the pods' imagePullSecrets (needs get on secrets)
}

func (f *imageFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.registryConfig, "registry-config", "", "dockerconfigjson file with registry credentials for image verification, tried after the pods' imagePullSecrets")
	fl.BoolVar(&f.insecure, "insecure-registries", false, "allow plain-HTTP registries when verifying images (local test registries only)")
	fl.DurationVar(&f.timeout, "verify-timeout", 2*time.Second, "time budget of verifying one image, registry round trips included; keep it well inside the webhook timeout")
	fl.BoolVar(&f.readPullSecrets, "read-pull-secrets", true, "read the imagePullSecrets pods name for registry credentials (needs get on secrets in every namespace); off, only --registry-config is used")
}

// gatherer returns the image verification facts gatherer: pull secrets
// read through kube, Palisade's own credentials from --registry-config.
func (f imageFlags) gatherer(kube kubernetes.Interface, log *slog.Logger, reg prometheus.Registerer) (*imageverify.Gatherer, error) {
	var kc authn.Keychain
	if f.registryConfig != "" {
		cfg, err := os.ReadFile(f.registryConfig)
		if err != nil {
			return nil, err
		}
		if kc, err = imageverify.KeychainFromDockerConfigs(cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", f.registryConfig, err)
		}
	}
	v := imageverify.New(imageverify.Options{Timeout: f.timeout, Insecure: f.insecure, Registerer: reg, Log: log})
	o := imageverify.GathererOptions{Keychain: kc, Log: log}
	if f.readPullSecrets {
		o.Secrets = &imageverify.KubeSecrets{Client: kube}
	}
	return imageverify.NewGatherer(v, o), nil
}

// webhookHandler connects to the cluster of kubeconfig (empty: in-cluster,
// then $KUBECONFIG, then ~/.kube/config) and returns the admission handler
// deciding with engines, namespace labels from an informer, image facts
// from the registries.
func webhookHandler(ctx context.Context, kubeconfig string, engines admission.EngineSource, failOpen bool, images imageFlags,
	log *slog.Logger, reg prometheus.Registerer) (*admission.Handler, kubernetes.Interface, error) {
	restConfig, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig, Precedence: clientcmd.NewDefaultClientConfigLoadingRules().Precedence},
		&clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	kube, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, nil, err
	}
	namespaces, err := admission.NewNamespaceLister(ctx, kube)
	if err != nil {
		return nil, nil, err
	}
	gatherer, err := images.gatherer(kube, log, reg)
	if err != nil {
		return nil, nil, err
	}
	handler, err := admission.NewHandler(admission.Options{
		Engines: engines, Namespaces: namespaces, Images: gatherer, FailOpen: failOpen, Logger: log, Registerer: reg,
	})
	if err != nil {
		return nil, nil, err
	}
	return handler, kube, nil
}
