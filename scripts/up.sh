#!/usr/bin/env bash
# `make up`: the whole TrialWatch stack on this machine.
#   1. installs the emulator (moto, project venv) if missing and starts it
#      (TRIALWATCH_EMULATOR_PORT, default 4566; one already running is reused),
#   2. builds the runner, which provisions template.yaml's resources (prefix
#      `trialwatch`, idempotent) and serves every function in-process on
#      http://127.0.0.1:${TRIALWATCH_HTTP_PORT:-3000},
#   3. on Ctrl-C the runner drains in-flight work, then the emulator is stopped
#      if this script started it.
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
# Never let a developer's profile or session token reach the emulator.
unset AWS_PROFILE AWS_SESSION_TOKEN

echo "==> building trialwatch-local (debug profile)" >&2
cargo build -q -p trialwatch-local

# In the background and waited for, so a TERM to this script reaches the runner too.
cargo run -q -p trialwatch-local -- serve &
child=$!
rc=0
wait "$child" || rc=$?
child=""
exit "$rc"
