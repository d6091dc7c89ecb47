#!/usr/bin/env bash
# `make demo`: the main job end to end on this machine. Starts the emulator
# (installing it if missing; one already running is reused), then runs
# `trialwatch-local demo`, which starts the stack in-process on its own
# resources and a free port, drives it over HTTP and prints a summary.
# Sizes are flags: `make demo` passes DEMO_ARGS, e.g.
#   make demo DEMO_ARGS="--patients 200 --submissions 2000"
# The debug profile is used on purpose: one build for CI, tests and the demo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
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
unset AWS_PROFILE AWS_SESSION_TOKEN

echo "==> building trialwatch-local (debug profile)" >&2
cargo build -q -p trialwatch-local

cargo run -q -p trialwatch-local -- demo "$@" &
child=$!
rc=0
wait "$child" || rc=$?
child=""
exit "$rc"
