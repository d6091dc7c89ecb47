#!/usr/bin/env bash
# `make demo`: the main job end to end on this machine. Starts the emulator
# (installing it if missing; one already running is reused), then runs
# `trialwatch-local demo`, which starts the stack in-process on its own
# resources and a free port, drives it over HTTP and prints a summary.
# Sizes are flags: `make demo` passes DEMO_ARGS, e.g.
#   make demo DEMO_ARGS="--patients 200 --submissions 2000"
# The debug profile is used on purpose: one build for CI, tests and the demo.
set -euo pipefail
# The demo's correctness phases need the emulator; its burst phase runs in memory by itself.
export TRIALWATCH_STORE=emulator

# shellcheck source=lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

run_local demo "$@"
