#!/usr/bin/env bash
# `make run`: onair with everything it needs on this machine. Without ONAIR_MONGO_URI it
# starts a local MongoDB-compatible server (FerretDB, built by scripts/tools.sh) with its
# data under data/ferretdb; recordings go to data/ through the local storage backend.
#
# This script's own settings start with RUN_, never ONAIR_: onair refuses to start with an
# ONAIR_* variable that is not one of its config keys, and it sees this environment.
#   RUN_MONGO_PORT  port of the local MongoDB-compatible server (default 27018; the next
#                   port is its debug port)
# ONAIR_* variables (ONAIR_MONGO_URI, ONAIR_DATA_DIR, ...) are onair's config keys.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
data=${ONAIR_DATA_DIR:-$root/data}
mkdir -p "$data"

pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [ -z "${ONAIR_MONGO_URI:-}" ]; then
	port=${RUN_MONGO_PORT:-27018}
	debug_port=$((port + 1))
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "run: port $port is taken; set RUN_MONGO_PORT or ONAIR_MONGO_URI" >&2
		exit 1
	fi
	scripts/tools.sh ferretdb
	mkdir -p "$data/ferretdb"
	.tools/bin/ferretdb --handler=sqlite --sqlite-url="file:$data/ferretdb/" --state-dir="$data/ferretdb" \
		--listen-addr="127.0.0.1:$port" --debug-addr="127.0.0.1:$debug_port" \
		--telemetry=disable --log-level=error >"$data/ferretdb.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 100); do
		if curl -fsS "http://127.0.0.1:$debug_port/debug/readyz" >/dev/null 2>&1; then break; fi
		sleep 0.1
	done
	export ONAIR_MONGO_URI="mongodb://127.0.0.1:$port/?directConnection=true"
	echo "local MongoDB-compatible server (FerretDB): $ONAIR_MONGO_URI, data in $data/ferretdb"
fi

bin/onair -config configs/onair.yaml -demo &
pids+=($!)
wait "${pids[-1]}"
