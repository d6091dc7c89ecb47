# Sourced by the scripts that need the emulator (test.sh, invoke.sh, lib/stack.sh).
#   emulator_up    starts the emulator on $TRIALWATCH_EMULATOR_PORT unless one is
#                  already running there, and points the AWS SDK at it;
#   emulator_down  stops it again, but only if emulator_up started it, so an
#                  emulator a developer left running is reused and left alone.
# Expects to run from the repository root.

EMULATOR_STARTED_HERE=0

emulator_up() {
  if ! scripts/emulator.sh status >/dev/null 2>&1; then
    EMULATOR_STARTED_HERE=1
    scripts/emulator.sh start
  fi
  export AWS_ENDPOINT_URL="http://127.0.0.1:$TRIALWATCH_EMULATOR_PORT"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
  export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
  export AWS_REGION="${AWS_REGION:-us-east-1}"
  # Never let a developer's profile or session token reach the emulator.
  unset AWS_PROFILE AWS_SESSION_TOKEN
}

emulator_down() {
  if [ "$EMULATOR_STARTED_HERE" = 1 ]; then
    scripts/emulator.sh stop || true
  fi
}
