# Source this after infra/local/up.sh: points kurate, prefect and ray at the local services.
_kurate_state="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.state/env.sh"
if [ -f "$_kurate_state" ]; then . "$_kurate_state"; else echo "run infra/local/up.sh first" >&2; fi
unset _kurate_state
