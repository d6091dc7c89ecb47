#!/usr/bin/env bash
# `make test`: from nothing to a full check on a fresh machine.
#   1. installs and starts the emulator (moto, project venv) on a free port,
#   2. cargo fmt --check, the duplicate-dependency gate (one HTTPS stack, one crypto
#      provider in the Lambda binaries), the file-size gate (no file of shared/src,
#      functions/*/src or local/provision/src over 500 lines outside its tests), cargo
#      clippy (warnings are errors),
#   3. cargo test over the whole workspace; integration tests provision their
#      own uniquely named resources from template.yaml on that emulator,
#   4. stops the emulator it started, whatever happened.
# TRIALWATCH_EMULATOR_PORT pins the port; an emulator already running there is reused and left running.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ -z "${TRIALWATCH_EMULATOR_PORT:-}" ]; then
  # A port of our own, so two runs on one machine never share an emulator.
  TRIALWATCH_EMULATOR_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
export TRIALWATCH_EMULATOR_PORT

started_here=0
child=""
stop_emulator() {
  if [ -n "$child" ]; then kill "$child" 2>/dev/null || true; fi
  if [ "$started_here" = 1 ]; then
    scripts/emulator.sh stop || true
  fi
}
trap stop_emulator EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Bash runs a trap only after the foreground command ends; running each step in
# the background and waiting for it lets a TERM stop the emulator at once.
run() {
  "$@" &
  child=$!
  wait "$child"
  child=""
}

if ! scripts/emulator.sh status >/dev/null 2>&1; then
  started_here=1
  scripts/emulator.sh start
fi

export AWS_ENDPOINT_URL="http://127.0.0.1:$TRIALWATCH_EMULATOR_PORT"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
# Never let a developer's profile or session token leak into emulator requests.
unset AWS_PROFILE AWS_SESSION_TOKEN

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
run cargo fmt --all --check

step "duplicate-dependency gate (scripts/dup-gate.sh)"
run scripts/dup-gate.sh

step "file-size gate (scripts/size-gate.sh)"
run scripts/size-gate.sh

step "cargo clippy --workspace --all-targets -- -D warnings"
run cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace (emulator at $AWS_ENDPOINT_URL)"
run cargo test --workspace --no-fail-fast
