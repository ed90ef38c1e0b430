// Package cluster runs a real Kubernetes API server for tests: etcd and
// kube-apiserver, built by hack/build-k8s.sh, as child processes on free
// loopback ports, with a freshly generated PKI and an admin kubeconfig.
//
// Start gives a test a cluster of its own; Shared gives every test of a
// binary the same one, which Main stops after the tests. Launch is the
// same without a testing.TB, for hack/cluster-up.sh. There is no kubelet,
// scheduler or controller-manager: objects are admitted (webhooks
// included) and stored, pods stay Pending. The API server allows
// privileged pods and runs without the ServiceAccount admission plugin,
// so that Palisade's own admission is what decides.
//
// Lifecycle: Launch returns only when /readyz passes and the default
// namespace exists, and leaves nothing running when it fails. Stop waits
// until both processes have exited. Processes started for tests die with
// the test binary even if Stop never runs.
package cluster
