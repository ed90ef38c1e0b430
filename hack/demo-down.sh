#!/usr/bin/env bash
# Stops what hack/demo.sh started: palisade up (which removes its webhook
# configuration on the way out), then the local cluster.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
state="${PALISADE_CACHE:-$HOME/.cache/palisade}/demo"
if [ -f "$state/up.pid" ]; then
	pid="$(cat "$state/up.pid")"
	if kill -INT "$pid" 2>/dev/null; then
		for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f "$state/up.pid"
fi
if [ -d "$state/cluster" ]; then
	bash "$root/hack/cluster-down.sh" "$state/cluster"
fi
echo "demo stopped" >&2
