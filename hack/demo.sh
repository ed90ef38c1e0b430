#!/usr/bin/env bash
# make demo: Palisade's main job on one machine. Builds what is missing,
# starts a local kube-apiserver + etcd, runs `palisade up` on
# policies-example, and shows the admission webhook at work with kubectl.
# Everything keeps running afterwards; `make demo-down` stops it.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
state="${PALISADE_CACHE:-$HOME/.cache/palisade}/demo"
step() { printf '\n==> %s\n' "$*" >&2; }

step "1/6 kube-apiserver, kubectl and etcd (the first build takes about 8 minutes; cached after that)"
bash hack/build-k8s.sh >/dev/null

step "2/6 palisade"
make --no-print-directory build >/dev/null
bash hack/demo-down.sh >/dev/null 2>&1 || true
mkdir -p "$state"

step "3/6 a local cluster on loopback"
eval "$(bash hack/cluster-up.sh "$state/cluster")"
kubectl create namespace payments >/dev/null
kubectl create namespace ci >/dev/null

step "4/6 palisade up policies-example (reconciler, bundle service, admission webhook)"
bin/palisade up policies-example --kubeconfig "$KUBECONFIG" >"$state/up.log" 2>"$state/up.err" &
echo $! >"$state/up.pid"
for _ in $(seq 1 600); do
	grep -q "palisade up: ready" "$state/up.log" 2>/dev/null && break
	if ! kill -0 "$(cat "$state/up.pid")" 2>/dev/null; then
		cat "$state/up.log" "$state/up.err" >&2
		echo "palisade up exited" >&2
		exit 1
	fi
	sleep 0.1
done
grep -q "palisade up: ready" "$state/up.log" || { cat "$state/up.err" >&2; echo "palisade up not ready after 60 s" >&2; exit 1; }
sed 's/^/    /' "$state/up.log"

show() { # show TITLE MANIFEST: apply, print what kubectl says
	step "$1"
	echo "\$ kubectl apply -f $2" >&2
	kubectl apply -f "$2" 2>&1 | sed 's/^/    /' || true
}
step "5/6 admission decisions"
show "a compliant pod: admitted, no warning" policies-example/tests/manifests/golden-pod-default.yaml
show "a privileged busybox pod: denied, with the rule, value and container" policies-example/tests/manifests/busybox-privileged.yaml
cat >"$state/warn.yaml" <<'POD'
apiVersion: v1
kind: Pod
metadata: {name: unpinned, namespace: default}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: web
      image: ghcr.io/acme/web:1.4.2
      resources: {requests: {cpu: 100m}, limits: {memory: 128Mi}}
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
POD
show "an image without a digest: a log rule, admitted with a warning" "$state/warn.yaml"
step "kubectl exec into a pod in a protected namespace: denied"
echo "\$ kubectl exec web -- sh" >&2
kubectl exec web -- sh 2>&1 | sed 's/^/    /' || true

step "6/6 running"
cat >&2 <<MSG
    export KUBECONFIG=$KUBECONFIG
    export PATH=$(dirname "$(command -v kubectl)"):\$PATH
    status:   $(grep -o 'http://[^ ]*/status' "$state/up.log")
    metrics:  $(grep -o 'http://[^ ]*/metrics' "$state/up.log")
    logs:     $state/up.err (decision log, JSON lines)
    stop:     make demo-down
MSG
