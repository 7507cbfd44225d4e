#!/usr/bin/env bash
# Stop what infra/local/up.sh started, and nothing else: up.sh runs the Prefect server and the Ray head
# each as the leader of a new process session and records its id; this stops the processes of those
# sessions (the Ray head's GCS, raylet, dashboard and workers, the Prefect server and its children).
# Other Ray instances on the machine keep running (unlike `ray stop`).
#
#   infra/local/down.sh    # with the KURATE_INFRA_STATE that up.sh used, if any
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="${KURATE_INFRA_STATE:-$here/.state}"

members() { pgrep -s "$1" 2>/dev/null | tr '\n' ' '; }

stop_session() {  # name: stop every process in the session recorded in <state>/<name>.pid
  local file="$state/$1.pid" sid pids
  [ -f "$file" ] || return 0
  sid="$(cat "$file")"
  # pgrep -s 0 would mean *this* shell's session: accept only a real process id.
  if ! [[ "$sid" =~ ^[0-9]+$ ]] || [ "$sid" -le 1 ]; then
    echo "ignoring $file: '$sid' is not a process id" >&2
    rm -f "$file"
    return 0
  fi
  pids="$(members "$sid")"
  if [ -n "$pids" ]; then
    # SIGTERM lets the GCS, raylet and the Prefect server shut down cleanly; SIGKILL what is left after 30 s.
    kill -TERM $pids 2>/dev/null
    for _ in $(seq 1 30); do
      pids="$(members "$sid")"
      [ -z "$pids" ] && break
      sleep 1
    done
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    echo "stopped $1 (session $sid)"
  fi
  rm -f "$file"
}

stop_session ray
stop_session prefect
if [ -f "$state/ray.tmpdir" ]; then
  tmp="$(cat "$state/ray.tmpdir")"
  case "$tmp" in /tmp/kurate-ray.*) rm -rf "$tmp" ;; esac  # only the temp dir up.sh made
  rm -f "$state/ray.tmpdir"
fi
rm -f "$state/env.sh"
echo "stopped"
