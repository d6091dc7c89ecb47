# Sourced by up.sh and demo.sh: the emulator (started here only if none is
# running, and then stopped on exit), the AWS environment pointing at it, and
# `run_local <subcommand> [args]`, which builds trialwatch-local and runs it.
# Expects `set -euo pipefail` in the caller.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export TRIALWATCH_EMULATOR_PORT="${TRIALWATCH_EMULATOR_PORT:-4566}"
# shellcheck source=emulator_env.sh
source scripts/lib/emulator_env.sh

child=""
cleanup() {
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  emulator_down
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

emulator_up

# Builds the runner (debug profile), then runs it in the background and waits,
# so a TERM to the calling script reaches the runner too; exits with its status.
run_local() {
  echo "==> building trialwatch-local (debug profile)" >&2
  cargo build -q -p trialwatch-local
  cargo run -q -p trialwatch-local -- "$@" &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=""
  exit "$rc"
}
