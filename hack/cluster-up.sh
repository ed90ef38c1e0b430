#!/usr/bin/env bash
# Starts etcd and kube-apiserver on free loopback ports with generated
# certificates, for the demo and for trying things by hand. The flags are
# those test/cluster gives tests (hack/cluster/main.go runs its code).
#
#   eval "$(hack/cluster-up.sh [STATE_DIR])"
#
# STATE_DIR (default $PALISADE_CLUSTER_DIR, else
# ${PALISADE_CACHE:-$HOME/.cache/palisade}/cluster) receives the certificates,
# the kubeconfig, etcd's data, the logs and the pid files; each start
# replaces them, so every cluster starts empty. Builds the binaries first
# if they are not cached (hack/build-k8s.sh). Waits until /readyz passes,
# then prints on stdout the lines to eval: KUBECONFIG, and PATH with kubectl.
# hack/cluster-down.sh [STATE_DIR] stops it.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
state="${1:-${PALISADE_CLUSTER_DIR:-${PALISADE_CACHE:-$HOME/.cache/palisade}/cluster}}"

bin="$(bash "$root/hack/build-k8s.sh")"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
echo "cluster-up: starting etcd and kube-apiserver in $state" >&2
cd "$root"
go run ./hack/cluster -bin "$bin" -dir "$state"
