# Sourced by up.sh and demo.sh: the emulator (started here only if none is
# running, and then stopped on exit), the AWS environment pointing at it, and
# `run_local <subcommand> [args]`, which builds trialwatch-local and runs it.
# Expects `set -euo pipefail` in the caller.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export TRIALWATCH_EMULATOR_PORT="${TRIALWATCH_EMULATOR_PORT:-4566}"

started_here=0
child=""
cleanup() {
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  if [ "$started_here" = 1 ]; then
    scripts/emulator.sh stop || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! scripts/emulator.sh status >/dev/null 2>&1; then
  started_here=1
  scripts/emulator.sh start
fi

export AWS_ENDPOINT_URL="http://127.0.0.1:$TRIALWATCH_EMULATOR_PORT"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
# Never let a developer's profile or session token reach the emulator.
unset AWS_PROFILE AWS_SESSION_TOKEN

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
