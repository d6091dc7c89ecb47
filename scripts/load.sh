#!/usr/bin/env bash
# `make load`: the HTTP API under load, on each backend in turn.
#   STORES        backends, in order (default "memory emulator"):
#                   memory    the in-memory adapters: TrialWatch's own code (HTTP, JWT authorizer,
#                             validation, handlers, pollers), not a database;
#                   emulator  the template's resources on moto: the emulator's rate, not AWS's.
#   CONCURRENCY   requests in flight, one run per value (default "16 64")
#   DURATION      measured seconds per run (default 15), after a 2 s warm-up
#   LOAD_ARGS     more `trialwatch-local load` flags, e.g. "--rate 2000 --vitals-every 0"
# For each backend it starts `trialwatch-local serve` on TRIALWATCH_HTTP_PORT (default 3000), waits
# for /health, runs the generator with the server's pid (its CPU time comes from /proc/<pid>/stat),
# then stops the server. The generator runs on the same cores as the server: read the CPU figure.
# Release profile by default (TRIALWATCH_PROFILE=debug for a quick look; its CPU figures are ~5-10x).
set -euo pipefail

STORES="${STORES:-memory emulator}"
CONCURRENCY="${CONCURRENCY:-16 64}"
DURATION="${DURATION:-15}"
export TRIALWATCH_PROFILE="${TRIALWATCH_PROFILE:-release}"
# The emulator is started (and stopped on exit) only when a run needs it.
case " $STORES " in *" emulator "*) export TRIALWATCH_STORE=emulator ;; *) export TRIALWATCH_STORE=memory ;; esac

# shellcheck source=lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

if runner_answers; then
  echo "load: something already answers on http://127.0.0.1:$TRIALWATCH_HTTP_PORT: stop it or set TRIALWATCH_HTTP_PORT to a free port" >&2
  exit 1
fi
bin="$(local_bin)"
mkdir -p .local
rows=()
for store in $STORES; do
  log=".local/load-$store.log"
  TRIALWATCH_STORE="$store" "$bin" serve >"$log" 2>&1 &
  child=$!
  for _ in $(seq 1 600); do
    runner_answers && break
    kill -0 "$child" 2>/dev/null || { echo "load: the $store stack exited during start; see $log" >&2; exit 1; }
    sleep 0.2
  done
  runner_answers || { echo "load: the $store stack did not answer on port $TRIALWATCH_HTTP_PORT within 120 s; see $log" >&2; exit 1; }
  # The emulator enrols ~25 patients/s; in memory many more patients keep chains apart at high concurrency.
  patients=500
  [ "$store" = emulator ] && patients=100
  for c in $CONCURRENCY; do
    echo "==> $store, concurrency $c, ${DURATION} s"
    # shellcheck disable=SC2086
    out="$("$bin" load --url "http://127.0.0.1:$TRIALWATCH_HTTP_PORT" --concurrency "$c" --duration-secs "$DURATION" \
      --patients "$patients" --server-pid "$child" --label "$store ($TRIALWATCH_PROFILE)" ${LOAD_ARGS:-})" || true
    echo "$out"
    rows+=("$(echo "$out" | grep -E '^  \| ' | tail -n 1 | sed 's/^  //')")
  done
  kill -TERM "$child" 2>/dev/null || true
  wait "$child" 2>/dev/null || true
  child=""
done
echo
echo "| backend | concurrency | req/s | p50 | p99 | p99.9 | errors | server CPU µs/req |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
