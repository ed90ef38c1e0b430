#!/usr/bin/env bash
# Installs what test/runtime needs to run real containers, from Debian's
# packages, and only what is missing (a second run installs nothing):
#
#   runc            the container runtime (Debian's crun refuses hybrid
#                   cgroup v1 + v2 hosts, runc runs on both kinds)
#   busybox-static  /bin/busybox, static, the containers' whole rootfs
#                   (Debian's dynamic `busybox` installs the same path and
#                   does not work: the rootfs has no libc)
#
# Needs root, as apt-get does. .ci/run installs the same packages.
set -euo pipefail

need=()
command -v runc >/dev/null || need+=(runc)
# dpkg, not the path: the dynamic busybox package owns /bin/busybox too.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
if ((${#need[@]} == 0)); then
	exit 0
fi
echo "installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
