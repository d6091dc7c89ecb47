# Sourced by up.sh, demo.sh and load.sh: the emulator (started here only if
# none answers on its port, and then stopped on exit), the AWS environment
# pointing at it, and `run_local <subcommand> [args]`, which builds
# trialwatch-local and runs it. With TRIALWATCH_STORE=memory (`make up
# STORE=memory`) the stack needs no emulator, and none is started.
# Expects `set -euo pipefail` in the caller.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export TRIALWATCH_EMULATOR_PORT="${TRIALWATCH_EMULATOR_PORT:-4566}"
# The runner's HTTP port (`make up`); the demo and the tests pick free ports themselves.
export TRIALWATCH_HTTP_PORT="${TRIALWATCH_HTTP_PORT:-3000}"
export TRIALWATCH_STORE="${TRIALWATCH_STORE:-emulator}"
# debug (the default: one build for CI, tests and the demo) or release (`make load`).
TRIALWATCH_PROFILE="${TRIALWATCH_PROFILE:-debug}"
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

case "$TRIALWATCH_STORE" in
  memory) ;;
  emulator) emulator_up ;;
  *) echo "TRIALWATCH_STORE=$TRIALWATCH_STORE: expected emulator or memory (make up STORE=memory)" >&2; exit 2 ;;
esac

# The runner binary: TRIALWATCH_LOCAL_BIN when set (tests pass the one cargo
# built for them), else built here. Run directly, not through `cargo run`, so
# its pid is the server's (load.sh reads its CPU time).
local_bin() {
  if [ -n "${TRIALWATCH_LOCAL_BIN:-}" ]; then
    echo "$TRIALWATCH_LOCAL_BIN"
    return
  fi
  local flag=()
  [ "$TRIALWATCH_PROFILE" = release ] && flag=(--release)
  echo "==> building trialwatch-local ($TRIALWATCH_PROFILE profile)" >&2
  cargo build -q -p trialwatch-local "${flag[@]}"
  echo "${CARGO_TARGET_DIR:-$ROOT/target}/$TRIALWATCH_PROFILE/trialwatch-local"
}

# Whether a TrialWatch runner answers on the HTTP port (its /health route).
runner_answers() {
  curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$TRIALWATCH_HTTP_PORT/health" 2>/dev/null
}

# Runs the runner in the background and waits, so a TERM to the calling
# script reaches the runner too; exits with its status.
run_local() {
  local bin
  bin="$(local_bin)"
  "$bin" "$@" &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=""
  exit "$rc"
}
