#!/usr/bin/env bash
# Start a real Prefect server and a local Ray head on 127.0.0.1, in the background.
# Then `source infra/local/env.sh` points kurate (and the prefect/ray CLIs) at them.
#
#   infra/local/up.sh            # PREFECT_PORT=4200 RAY_PORT=6379 by default
#   infra/local/down.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${KURATE_BIN:-$repo/.venv/bin}"
state="$here/.state"
mkdir -p "$state"
PREFECT_PORT="${PREFECT_PORT:-4200}"
RAY_PORT="${RAY_PORT:-6379}"

export PREFECT_HOME="${PREFECT_HOME:-$state/prefect-home}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"  # loopback only; use token auth on shared clusters

if ! curl -fsS "http://127.0.0.1:$PREFECT_PORT/api/health" >/dev/null 2>&1; then
  nohup "$bin/prefect" server start --host 127.0.0.1 --port "$PREFECT_PORT" >"$state/prefect.log" 2>&1 &
  echo $! >"$state/prefect.pid"
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$PREFECT_PORT/api/health" >/dev/null 2>&1 && break
    sleep 1
  done
fi
curl -fsS "http://127.0.0.1:$PREFECT_PORT/api/health" >/dev/null || { echo "Prefect server did not start; see $state/prefect.log" >&2; exit 1; }

if ! "$bin/ray" status --address "127.0.0.1:$RAY_PORT" >/dev/null 2>&1; then
  "$bin/ray" start --head --node-ip-address 127.0.0.1 --port "$RAY_PORT" --include-dashboard false \
    --num-cpus "${RAY_NUM_CPUS:-$(nproc)}" --disable-usage-stats >"$state/ray.log" 2>&1
fi

cat >"$state/env.sh" <<ENV
export PREFECT_HOME="$PREFECT_HOME"
export PREFECT_API_URL="http://127.0.0.1:$PREFECT_PORT/api"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export RAY_ADDRESS="127.0.0.1:$RAY_PORT"
export RAY_AUTH_MODE="$RAY_AUTH_MODE"
ENV
echo "Prefect UI: http://127.0.0.1:$PREFECT_PORT    Ray: 127.0.0.1:$RAY_PORT"
echo "Now: source infra/local/env.sh"
