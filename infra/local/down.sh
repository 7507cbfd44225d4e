#!/usr/bin/env bash
# Stop what infra/local/up.sh started.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${KURATE_BIN:-$here/../../.venv/bin}"
state="$here/.state"
[ -f "$state/prefect.pid" ] && kill "$(cat "$state/prefect.pid")" 2>/dev/null && rm -f "$state/prefect.pid"
"$bin/ray" stop --force >/dev/null 2>&1 || true
rm -f "$state/env.sh"
echo "stopped"
