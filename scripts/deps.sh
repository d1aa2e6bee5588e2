#!/usr/bin/env bash
# Installs the system packages the tests and benchmarks use, when they are missing:
# ffmpeg/ffprobe (the publisher that plays OBS's part, and the probe), Chromium (browser
# tests), nginx with the RTMP module and wrk (the benchmark's peer and load).
set -euo pipefail

need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v chromium >/dev/null || need+=(chromium)
if [ "${1:-}" = "bench" ]; then
	command -v nginx >/dev/null || need+=(nginx)
	[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
	command -v wrk >/dev/null || need+=(wrk)
fi
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
