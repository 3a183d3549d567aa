# Source this from a shell to run Dagster processes by hand with the production settings:
#   . deploy/env.sh && dagster-daemon run
# It only re-exports deploy/dagster.env (the one place the batching switches are set) and
# points DAGSTER_HOME at this directory unless one is set already.
_deploy_dir="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
set -a
. "${_deploy_dir}/dagster.env"
set +a
export DAGSTER_HOME="${DAGSTER_HOME:-${_deploy_dir}}"
unset _deploy_dir
