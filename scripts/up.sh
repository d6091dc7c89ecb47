#!/usr/bin/env bash
# `make up`: the whole TrialWatch stack on this machine.
#   1. installs the emulator (moto, project venv) if missing and starts it
#      (TRIALWATCH_EMULATOR_PORT, default 4566; one that already answers
#      there is reused, one that does not is restarted),
#   2. builds the runner, which provisions template.yaml's resources (prefix
#      `trialwatch`, idempotent) and serves every function in-process on
#      http://127.0.0.1:${TRIALWATCH_HTTP_PORT:-3000},
#   3. on Ctrl-C or TERM the runner drains in-flight work, then the emulator
#      is stopped if this script started it.
# `make up STORE=memory` (TRIALWATCH_STORE=memory) serves the same routes,
# handlers and pollers on the in-memory adapters instead: no emulator at all.
set -euo pipefail

# shellcheck source=lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

if runner_answers; then
  echo "up: a TrialWatch stack already answers on http://127.0.0.1:$TRIALWATCH_HTTP_PORT: use it, stop it, or set TRIALWATCH_HTTP_PORT to a free port" >&2
  exit 1
fi
run_local serve
