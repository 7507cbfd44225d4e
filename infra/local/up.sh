#!/usr/bin/env bash
# Start a Prefect server and a Ray head (with the dashboard / Jobs API) on 127.0.0.1, in the background,
# each in its own process session whose id is recorded under the state folder: infra/local/down.sh
# stops exactly those sessions and nothing else (never `ray stop`, which stops every Ray on the machine).
# Then `source infra/local/env.sh` points kurate (and the prefect/ray CLIs) at them.
#
#   infra/local/up.sh      # defaults: PREFECT_PORT=4200 RAY_PORT=6379 RAY_DASHBOARD_PORT=8265
#   PREFECT_PORT=4300 RAY_PORT=6400 RAY_DASHBOARD_PORT=8300 KURATE_INFRA_STATE=/tmp/k infra/local/up.sh
#   infra/local/down.sh    # same KURATE_INFRA_STATE
#
# Settings (environment): PREFECT_PORT, RAY_PORT (GCS), RAY_DASHBOARD_PORT (dashboard + Jobs API),
# RAY_CLIENT_PORT (10001), RAY_DASHBOARD_AGENT_PORT (52365), RAY_NUM_CPUS (all cores),
# KURATE_INFRA_STATE (pid files, logs, env.sh; default infra/local/.state), KURATE_BIN (the venv's bin).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${KURATE_BIN:-$repo/.venv/bin}"
state="${KURATE_INFRA_STATE:-$here/.state}"
mkdir -p "$state"
state="$(cd "$state" && pwd)"
PREFECT_PORT="${PREFECT_PORT:-4200}"
RAY_PORT="${RAY_PORT:-6379}"
RAY_DASHBOARD_PORT="${RAY_DASHBOARD_PORT:-8265}"
RAY_CLIENT_PORT="${RAY_CLIENT_PORT:-10001}"
RAY_DASHBOARD_AGENT_PORT="${RAY_DASHBOARD_AGENT_PORT:-52365}"

# A session started here is "ours" while its leader (the pid in the file) is alive.
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if alive "$state/prefect.pid" && alive "$state/ray.pid" && [ -f "$state/env.sh" ]; then
  echo "already running (state in $state); source $state/env.sh, or stop with: KURATE_INFRA_STATE=$state $here/down.sh"
  exit 0
fi
for name in prefect ray; do
  if alive "$state/$name.pid"; then
    echo "$name from an earlier up.sh is still running (pid $(cat "$state/$name.pid")); stop it first: KURATE_INFRA_STATE=$state $here/down.sh" >&2
    exit 1
  fi
done
for var in PREFECT_PORT RAY_PORT RAY_DASHBOARD_PORT RAY_CLIENT_PORT RAY_DASHBOARD_AGENT_PORT; do
  if port_busy "${!var}"; then
    echo "port ${!var} on 127.0.0.1 is in use: set $var to a free port" >&2
    exit 1
  fi
done

export PREFECT_HOME="${PREFECT_HOME:-$state/prefect-home}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
# The UI is a browser app that asks /ui-settings for its API address; without these it is told the
# default port 4200 whatever --port says.
export PREFECT_SERVER_API_HOST=127.0.0.1 PREFECT_SERVER_API_PORT="$PREFECT_PORT"
export PREFECT_UI_API_URL="http://127.0.0.1:$PREFECT_PORT/api"
# Ray 2.60 turns token auth on for new clusters. It is off here only because every port this head
# opens is on 127.0.0.1 (single-machine mode below; tests/test_infra.py checks the listening sockets):
# nothing off this machine can reach it, but every local user can (the Prefect server has no auth
# either). On a shared machine, start with RAY_AUTH_MODE=token.
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
export RAY_USAGE_STATS_ENABLED=0
# `ray start --node-ip-address 127.0.0.1` alone is rewritten to the machine's outward address (Ray wants
# other nodes to reach the head). With Ray's single-machine switch (the default on macOS/Windows) the
# node address stays 127.0.0.1, so the GCS address, the agents and the client server use loopback; the
# price is that no other node can join this head — it is a local-only cluster by design.
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0

# setsid: each service leads a new session, so down.sh can stop it and every child by that id.
setsid "$bin/prefect" server start --host 127.0.0.1 --port "$PREFECT_PORT" </dev/null >"$state/prefect.log" 2>&1 &
echo $! >"$state/prefect.pid"

# Ray's socket paths must stay under 107 bytes and /tmp/ray is shared with every other Ray on the
# machine: a short private temp dir, removed by down.sh.
ray_tmp="$(mktemp -d /tmp/kurate-ray.XXXXXX)"
echo "$ray_tmp" >"$state/ray.tmpdir"
# Ray Jobs start in the directory Ray was started from: the repository root, where the README's
# commands run, so a job sees a relative root (runs/demo) as the same folder as the flow that submits it.
(cd "$repo" && exec setsid "$bin/ray" start --head --block --node-ip-address 127.0.0.1 --port "$RAY_PORT" \
  --include-dashboard true --dashboard-host 127.0.0.1 --dashboard-port "$RAY_DASHBOARD_PORT" \
  --dashboard-agent-listen-port "$RAY_DASHBOARD_AGENT_PORT" --ray-client-server-port "$RAY_CLIENT_PORT" \
  --temp-dir "$ray_tmp" --num-cpus "${RAY_NUM_CPUS:-$(nproc)}" --disable-usage-stats \
  </dev/null >"$state/ray.log" 2>&1) &
echo $! >"$state/ray.pid"

wait_for() {  # URL, name, log
  for _ in $(seq 1 180); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    alive "$state/$2.pid" || break
    sleep 1
  done
  echo "$2 did not start (see $3); stopping what started" >&2
  KURATE_INFRA_STATE="$state" "$here/down.sh" >&2
  exit 1
}
wait_for "http://127.0.0.1:$PREFECT_PORT/api/health" prefect "$state/prefect.log"
wait_for "http://127.0.0.1:$RAY_DASHBOARD_PORT/api/version" ray "$state/ray.log"

cat >"$state/env.sh" <<ENV
export PREFECT_HOME="$PREFECT_HOME"
export PREFECT_API_URL="http://127.0.0.1:$PREFECT_PORT/api"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export RAY_ADDRESS="127.0.0.1:$RAY_PORT"
export RAY_JOB_ADDRESS="http://127.0.0.1:$RAY_DASHBOARD_PORT"
export RAY_AUTH_MODE="$RAY_AUTH_MODE"
# a driver rewrites 127.0.0.1 to the outward address as the head would, unless it runs in the same mode
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
ENV
echo "Prefect UI: http://127.0.0.1:$PREFECT_PORT    Ray: 127.0.0.1:$RAY_PORT    Ray dashboard: http://127.0.0.1:$RAY_DASHBOARD_PORT"
if [ -n "${KURATE_INFRA_STATE:-}" ]; then
  echo "Now: source $state/env.sh"
else
  echo "Now: source infra/local/env.sh"
fi
