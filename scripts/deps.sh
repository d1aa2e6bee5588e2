#!/usr/bin/env bash
# Installs the system packages the tests and benchmarks use, when they are missing:
# ffmpeg/ffprobe (the publisher that plays OBS's part, and the probe), Chromium (browser
# tests), nginx (the caching proxy in front of onair's HLS, configs/cdn), and for the
# benchmarks nginx's RTMP module and wrk (the benchmark's peer and load).
set -euo pipefail

need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v chromium >/dev/null || need+=(chromium)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ "${1:-}" = "bench" ]; then
	[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
	command -v wrk >/dev/null || need+=(wrk)
fi
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing ${need[*]}" >&2

# Debian's nginx package starts a system nginx on port 80 after installing, and fails to
# install when that port is taken. The tests start their own nginx on free ports and never
# use the system one, so tell the package scripts not to start services (policy-rc.d,
# honoured by invoke-rc.d and deb-systemd-invoke), unless the machine has its own policy.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	trap '$sudo rm -f "$policy"' EXIT
	printf '#!/bin/sh\n# scripts/deps.sh of onair: no services started while it installs packages\nexit 101\n' |
		$sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
fi

$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
