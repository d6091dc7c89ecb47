#!/usr/bin/env bash
# `make invoke`: every function driven by the files in events/, through cargo-lambda, as a
# developer without Docker runs `sam local invoke`:
#   1. the emulator (its own free port unless TRIALWATCH_EMULATOR_PORT is set) and
#      template.yaml's resources on it (prefix `invoke`),
#   2. `cargo lambda watch` on 127.0.0.1 with those resources in its environment,
#   3. `cargo lambda invoke <fn> --data-file events/<x>.json`, one event after another, each
#      response checked (HTTP status, batchItemFailures, the schedule's outcome),
#   4. stops what it started, whatever happened.
# Events are never downloaded (`--data-example`): the files in events/ are the ones the tests use.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STATE="${TRIALWATCH_STATE_DIR:-$ROOT/.local}"
mkdir -p "$STATE"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
if [ -z "${TRIALWATCH_EMULATOR_PORT:-}" ]; then
  TRIALWATCH_EMULATOR_PORT="$(free_port)"
fi
export TRIALWATCH_EMULATOR_PORT
WATCH_PORT="${TRIALWATCH_WATCH_PORT:-$(free_port)}"
WATCH_LOG="$STATE/invoke-watch-$WATCH_PORT.log"

scripts/tools.sh install
eval "$(scripts/tools.sh path)"

# shellcheck source=lib/emulator_env.sh
source scripts/lib/emulator_env.sh
watch_pid=""
work="$(mktemp -d)"
cleanup() {
  if [ -n "$watch_pid" ]; then
    # watch runs in a session of its own (setsid below): end it and the functions it started.
    kill -- "-$watch_pid" 2>/dev/null || kill "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
  fi
  emulator_down
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

emulator_up

echo "invoke: provisioning template.yaml's resources on $AWS_ENDPOINT_URL" >&2
eval "$(cargo run -q -p trialwatch-provision -- invoke)"

echo "invoke: cargo lambda watch on 127.0.0.1:$WATCH_PORT (log: $WATCH_LOG)" >&2
setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" --timeout 900 --quiet \
  >"$WATCH_LOG" 2>&1 </dev/null &
watch_pid=$!
for _ in $(seq 1 300); do
  if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1', $WATCH_PORT)))"; then
    break
  fi
  kill -0 "$watch_pid" 2>/dev/null || { echo "invoke: cargo lambda watch exited; log follows" >&2; cat "$WATCH_LOG" >&2; exit 1; }
  sleep 0.2
done

# Data the events refer to and no PUT event creates: patient P0002 (second record of
# events/vitals-normal.json) and trial tw-heart-01 with patient P-0042 (events/alert-sqs.json).
# They are seeded from the PUT events with those ids; the second trial has no webhook, so no
# request leaves this machine.
seed() { # source-event target-file trial [patient]
  python3 - "$@" <<'PY'
import json, sys
source, target, trial = sys.argv[1:4]
patient = sys.argv[4] if len(sys.argv) > 4 else None
event = json.load(open(source))
body = json.loads(event["body"])
body.get("alerting", {}).pop("webhook", None)
event["body"] = json.dumps(body)
params = event["pathParameters"]
event["rawPath"] = event["rawPath"].replace(params["trialId"], trial, 1)
params["trialId"] = trial
if patient:
    event["rawPath"] = event["rawPath"].replace(params["patientId"], patient)
    params["patientId"] = patient
claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
if "custom:trial_ids" in claims:
    claims["custom:trial_ids"] = trial
json.dump(event, open(target, "w"))
PY
}
# The submission event's completedAt is a fixed date, and answers completed before the patient's
# enrolment (made a moment ago, above) are refused with a 422: the copy sent is dated now, with a
# new submission id so that a re-run against the same emulator is a new submission, not a 409.
redate_submission() { # source-event target-file
  python3 - "$@" <<'PY'
import datetime, json, sys, uuid
source, target = sys.argv[1:3]
event = json.load(open(source))
body = json.loads(event["body"])
body["submissionId"] = str(uuid.uuid4())
body["completedAt"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
event["body"] = json.dumps(body)
json.dump(event, open(target, "w"))
PY
}
redate_submission events/epro-post-submission.json "$work/post-submission-now.json"
seed events/epro-put-trial.json "$work/put-trial-heart.json" tw-heart-01
seed events/epro-put-patient.json "$work/put-patient-p0002.json" tw-demo P0002
seed events/epro-put-patient.json "$work/put-patient-heart.json" tw-heart-01 P-0042

# invoke FUNCTION EVENT_FILE CHECK: prints the response and fails unless CHECK holds.
# CHECK: http:<status>[|<status>]  |  batch:none (no batchItemFailures)  |  schedule (no failed report)
#        |  audit (200, at least one entry, newest first)
invoke() {
  local function="$1" event="$2" check="$3" response
  echo "--> cargo lambda invoke $function --data-file $event" >&2
  response="$(cargo lambda invoke "$function" --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" --data-file "$event")" || {
    echo "invoke: $function failed on $event; watch log follows" >&2
    tail -50 "$WATCH_LOG" >&2
    return 1
  }
  python3 - "$function" "$event" "$check" "$response" <<'PY'
import json, sys
function, event, check, raw = sys.argv[1:]
response = json.loads(raw)
kind, _, expected = check.partition(":")
if kind == "http":
    body = response.get("body", "")
    shown = {"statusCode": response.get("statusCode"), "body": body[:300] + ("..." if len(body) > 300 else "")}
    ok = str(response.get("statusCode")) in expected.split("|")
elif kind == "batch":
    shown = response
    ok = response.get("batchItemFailures") == []
elif kind == "audit":
    body = response.get("body", "")
    items = json.loads(body).get("items", []) if response.get("statusCode") == 200 else []
    shown = {"statusCode": response.get("statusCode"), "entries": [(e["at"], e["action"]) for e in items][:5]}
    ok = bool(items) and [e["at"] for e in items] == sorted((e["at"] for e in items), reverse=True)
elif kind == "schedule":
    shown = response
    ok = response.get("failed") == 0
else:
    sys.exit(f"unknown check {check}")
print(f"    {function} {event.split('/')[-1]}: {json.dumps(shown)}")
if not ok:
    sys.exit(f"invoke: {function} on {event}: expected {check}, got {raw[:1000]}")
PY
}

invoke epro-api events/epro-health.json http:200
# Created on a fresh emulator, replaced (200) when the same emulator is used again.
invoke epro-api events/epro-put-trial.json "http:201|200"
invoke epro-api "$work/put-trial-heart.json" "http:201|200"
invoke epro-api events/epro-put-patient.json "http:201|200"
invoke epro-api "$work/put-patient-p0002.json" "http:201|200"
invoke epro-api "$work/put-patient-heart.json" "http:201|200"
invoke epro-api "$work/post-submission-now.json" http:201

invoke epro-api events/epro-post-vitals.json http:202
invoke epro-api events/epro-get-patient.json http:200
# An auditor's read of P0001's trail: the enrolment above left at least one entry.
invoke epro-api events/epro-get-audit.json audit
invoke vitals-analyzer events/vitals-normal.json batch:none
invoke vitals-analyzer events/vitals-escalating.json batch:none
invoke alert-dispatcher events/alert-sqs.json batch:none
invoke report-generator events/report-post.json http:201
invoke report-generator events/report-schedule.json schedule
invoke report-generator events/audit-anchors.json schedule
echo "invoke: 4 functions, every response as expected" >&2
