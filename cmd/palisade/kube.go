package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/palisade-dev/palisade/admission"
)

// webhookHandler connects to the cluster of kubeconfig (empty: in-cluster,
// then $KUBECONFIG, then ~/.kube/config) and returns the admission handler
// deciding with engines, namespace labels from an informer.
func webhookHandler(ctx context.Context, kubeconfig string, engines admission.EngineSource, failOpen bool,
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
	handler, err := admission.NewHandler(admission.Options{
		Engines: engines, Namespaces: namespaces, FailOpen: failOpen, Logger: log, Registerer: reg,
	})
	if err != nil {
		return nil, nil, err
	}
	return handler, kube, nil
}
