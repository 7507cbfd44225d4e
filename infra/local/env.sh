# Source this after infra/local/up.sh: points kurate, prefect and ray at the local services.
# With a KURATE_INFRA_STATE folder given to up.sh, source <that folder>/env.sh instead (or set it here too).
_kurate_state="${KURATE_INFRA_STATE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.state}/env.sh"
if [ -f "$_kurate_state" ]; then . "$_kurate_state"; else echo "run infra/local/up.sh first ($_kurate_state is missing)" >&2; fi
unset _kurate_state
