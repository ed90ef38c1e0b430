#!/usr/bin/env bash
# Stops the cluster that hack/cluster-up.sh started from STATE_DIR (same
# default), API server first, and waits until both processes have exited:
# SIGTERM, then SIGKILL after 30 s. The state directory and its logs stay.
#
#   hack/cluster-down.sh [STATE_DIR]
set -euo pipefail

state="${1:-${PALISADE_CLUSTER_DIR:-${PALISADE_CACHE:-$HOME/.cache/palisade}/cluster}}"
stop_timeout=30

# alive PID NAME: PID is still a running NAME (not a recycled pid, and not
# an exited process that nobody has reaped yet).
alive() {
	local exe
	exe="$(readlink "/proc/$1/exe" 2>/dev/null)" || return 1
	exe="${exe% (deleted)}"
	[[ "$exe" == */"$2" ]]
}

stopped=0
for name in kube-apiserver etcd; do
	pidfile="$state/$name.pid"
	[[ -f "$pidfile" ]] || continue
	pid="$(<"$pidfile")"
	if alive "$pid" "$name"; then
		echo "cluster-down: stopping $name (pid $pid)" >&2
		kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + stop_timeout))
		while alive "$pid" "$name"; do
			if ((SECONDS >= deadline)); then
				echo "cluster-down: $name did not exit in ${stop_timeout} s, killing it" >&2
				kill -KILL "$pid" 2>/dev/null || true
			fi
			sleep 0.1
		done
		stopped=$((stopped + 1))
	fi
	rm -f "$pidfile"
done
if ((stopped == 0)); then
	echo "cluster-down: no cluster runs from $state" >&2
else
	echo "cluster-down: stopped" >&2
fi
