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

# shellcheck source=lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

run_local serve
