#!/usr/bin/env bash
# `make schemathesis`: property-based API tests of docs/openapi.yaml against the
# local stack, once per role, with a dev token each. Passes when no response is
# a 5xx and none breaks the schema (status code, content type, headers, body).
#
#   1. installs schemathesis (pinned) into .tools/schemathesis-venv;
#   2. uses the stack answering on http://127.0.0.1:${TRIALWATCH_HTTP_PORT:-3000},
#      or starts one (`make up`) and stops it again at the end;
#   3. seeds a trial (SCHEMATHESIS_TRIAL) with a questionnaire of every item type,
#      one enrolled patient, a submission that raises a PRO alert, and vitals, so
#      the generated requests reach validation and stored records, not just 404s;
#   4. runs schemathesis for each of ROLES; path ids, questionnaire ids and link
#      ids come from the seeded records most of the time (schemathesis
#      dictionaries), else are generated.
#
# Knobs: MAX_EXAMPLES (per operation and role, default 40), SEED (default 1),
# ROLES (default "patient site_staff sponsor auditor admin anonymous"),
# PHASES (default examples,coverage,fuzzing). Reports (JUnit, NDJSON) go
# to .local/schemathesis/<role>/. Not part of `make test`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PIN="schemathesis==4.32.5"
VENV="${TRIALWATCH_TOOLS_DIR:-$ROOT/.tools}/schemathesis-venv"
PORT="${TRIALWATCH_HTTP_PORT:-3000}"
BASE="http://127.0.0.1:$PORT"
MAX_EXAMPLES="${MAX_EXAMPLES:-40}"
SEED="${SEED:-1}"
ROLES="${ROLES:-patient site_staff sponsor auditor admin anonymous}"
PHASES="${PHASES:-examples,coverage,fuzzing}"
TRIAL="${SCHEMATHESIS_TRIAL:-st-hostile}"
PATIENT="P0001"
SITE="leeds"
OUT="$ROOT/.local/schemathesis"
# The checks that make the target: no 5xx, and every response as the schema
# documents it. (positive_data_acceptance would count every 403/404 that
# a generated id earns as a failure; negative_data_rejection is run too.)
CHECKS="${CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection}"

say() { echo "schemathesis: $*" >&2; }

install() {
  if [ -x "$VENV/bin/schemathesis" ] && [ "$(cat "$VENV/.pins" 2>/dev/null)" = "$PIN" ]; then
    return 0
  fi
  "$ROOT/scripts/emulator.sh" venv-support
  mkdir -p "$(dirname "$VENV")"
  exec 8>"$(dirname "$VENV")/schemathesis-install.lock"
  command -v flock >/dev/null 2>&1 && flock 8
  say "installing $PIN into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$PIN"
  echo "$PIN" >"$VENV/.pins"
  exec 8>&-
}

healthy() { curl -fsS -o /dev/null --max-time 2 "$BASE/health"; }

stack_pid=""
stop_stack() {
  if [ -n "$stack_pid" ] && kill -0 "$stack_pid" 2>/dev/null; then
    say "stopping the stack this run started"
    kill -TERM "$stack_pid" 2>/dev/null || true
    wait "$stack_pid" 2>/dev/null || true
  fi
}
trap stop_stack EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_stack() {
  if healthy; then
    say "using the stack on $BASE"
    return 0
  fi
  mkdir -p "$OUT"
  say "starting the local stack on $BASE (make up; log .local/schemathesis/up.log)"
  TRIALWATCH_HTTP_PORT="$PORT" setsid scripts/up.sh >"$OUT/up.log" 2>&1 &
  stack_pid=$!
  # The first start builds the runner: allow for a cold build on 2 cores.
  for _ in $(seq 1 900); do
    healthy && return 0
    kill -0 "$stack_pid" 2>/dev/null || { tail -20 "$OUT/up.log" >&2; say "the stack exited"; return 1; }
    sleep 1
  done
  say "the stack did not answer on $BASE/health within 15 minutes"
  return 1
}

token() { # role [TRIAL=..] [PATIENT=..] [SITES=..]
  local role="$1"; shift
  env ROLE="$role" SUB="schemathesis-$role" TTL=7200 "$@" scripts/token.sh
}

# curl with a token; prints the body, fails on a status other than the expected ones.
call() { # token method path expected-statuses [json-body]
  local tok="$1" method="$2" path="$3" expect="$4" body="${5:-}" status
  local args=(-sS -o "$OUT/last.json" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $tok")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
  status="$(curl "${args[@]}" "$BASE$path")"
  case " $expect " in
    *" $status "*) cat "$OUT/last.json" ;;
    *) say "seeding: $method $path answered $status: $(cat "$OUT/last.json")"; return 1 ;;
  esac
}

seed() {
  local admin="$1" staff="$2" patient="$3" now sub
  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  sub="$(python3 -c 'import uuid; print(uuid.uuid4())')"
  call "$admin" PUT "/v1/trials/$TRIAL" "200 201" '{
    "name": "Schemathesis trial",
    "sites": [{"id": "'"$SITE"'", "name": "Leeds"}, {"id": "york", "name": "York"}],
    "questionnaires": [{"id": "kccq-hf", "version": "1", "items": [
      {"linkId": "breathlessness", "type": "integer", "min": 0, "max": 10, "required": true},
      {"linkId": "sleep-hours", "type": "decimal", "min": 0, "max": 24},
      {"linkId": "ankle-swelling", "type": "choice", "options": [0, 1, 2, 3]},
      {"linkId": "appetite", "type": "choice", "options": ["good", "fair", "poor"]},
      {"linkId": "chest-pain", "type": "boolean"},
      {"linkId": "comment", "type": "string", "maxLength": 200}]}],
    "schedule": [{"questionnaireId": "kccq-hf", "frequency": "daily"}],
    "timezone": "Europe/London",
    "alerting": {"proRules": [{"questionnaireId": "kccq-hf", "linkId": "breathlessness", "atLeast": 9, "level": "medium"}]}
  }' >/dev/null
  call "$admin" PUT "/v1/trials/$TRIAL/patients/$PATIENT" "200 201" "{\"siteId\": \"$SITE\", \"status\": \"enrolled\"}" >/dev/null
  call "$patient" POST "/v1/trials/$TRIAL/patients/$PATIENT/submissions" "200 201" '{
    "submissionId": "'"$sub"'", "questionnaireId": "kccq-hf", "questionnaireVersion": "1", "completedAt": "'"$now"'",
    "answers": [{"linkId": "breathlessness", "value": 10}, {"linkId": "appetite", "value": "poor"}]}' >/dev/null
  call "$staff" POST "/v1/trials/$TRIAL/patients/$PATIENT/vitals" "202" '{"readings": [
    {"code": "respiratory_rate", "value": 26, "observedAt": "'"$now"'"}, {"code": "spo2", "value": 91, "observedAt": "'"$now"'"},
    {"code": "heart_rate", "value": 118, "observedAt": "'"$now"'"}]}' >/dev/null
  # The PRO alert's id, for the acknowledgement route (the outbox hands it over within seconds).
  ALERT_ID=""
  for _ in $(seq 1 30); do
    ALERT_ID="$(call "$staff" GET "/v1/trials/$TRIAL/patients/$PATIENT/alerts" "200" |
      python3 -c 'import json,sys; items=json.load(sys.stdin)["items"]; print(items[0]["alert"]["alertId"] if items else "")')"
    [ -n "$ALERT_ID" ] && break
    sleep 1
  done
  [ -n "$ALERT_ID" ] || { ALERT_ID="al-none"; say "seeding: no alert listed yet; the ack route gets generated ids only"; }
}

config() { # the schemathesis.toml: known ids most of the time, generated ones otherwise
  cat <<EOF
seed = $SEED
suppress-health-check = ["too_slow", "filter_too_much", "data_too_large"]

[cache]
directory = "$OUT/cache"

[dictionaries.trials]
values = ["$TRIAL"]
[dictionaries.patients]
values = ["$PATIENT"]
[dictionaries.alerts]
values = ["$ALERT_ID"]
[dictionaries.sites]
values = ["$SITE", "york"]
[dictionaries.questionnaires]
values = ["kccq-hf"]
[dictionaries.links]
values = ["breathlessness", "sleep-hours", "ankle-swelling", "appetite", "chest-pain", "comment"]

[parameters]
"path.trialId" = { dictionary = "trials", probability = 0.8 }
"path.patientId" = { dictionary = "patients", probability = 0.8 }
"path.alertId" = { dictionary = "alerts", probability = 0.7 }
"body.siteId" = { dictionary = "sites", probability = 0.7 }
"body.questionnaireId" = { dictionary = "questionnaires", probability = 0.7 }
"body.answers[*].linkId" = { dictionary = "links", probability = 0.7 }
EOF
}

main() {
  command -v curl >/dev/null 2>&1 || { say "curl is required"; exit 1; }
  install
  mkdir -p "$OUT"
  ensure_stack
  local admin staff patient sponsor auditor
  admin="$(token admin)"
  staff="$(token site_staff TRIAL="$TRIAL" SITES="$TRIAL/$SITE")"
  patient="$(token patient TRIAL="$TRIAL" PATIENT="$PATIENT")"
  sponsor="$(token sponsor TRIAL="$TRIAL")"
  auditor="$(token auditor TRIAL="$TRIAL")"
  seed "$admin" "$staff" "$patient"
  config >"$OUT/schemathesis.toml"

  local failed=0 role tok summary="$OUT/summary.txt"
  : >"$summary"
  for role in $ROLES; do
    case "$role" in
      admin) tok="$admin" ;; site_staff) tok="$staff" ;; patient) tok="$patient" ;;
      sponsor) tok="$sponsor" ;; auditor) tok="$auditor" ;; anonymous) tok="" ;;
      *) say "unknown role $role"; exit 2 ;;
    esac
    local headers=()
    [ -n "$tok" ] && headers=(-H "Authorization: Bearer $tok")
    say "== role $role"
    local rc=0
    "$VENV/bin/schemathesis" --no-color --config-file "$OUT/schemathesis.toml" run docs/openapi.yaml \
      --url "$BASE" "${headers[@]}" --checks "$CHECKS" --phases "$PHASES" \
      --max-examples "$MAX_EXAMPLES" --workers 1 --generation-database none \
      --report junit,ndjson --report-dir "$OUT/$role" 2>&1 | tee "$OUT/$role.log" || rc=$?
    [ "$rc" = 0 ] || failed=1
    "$VENV/bin/python" "$ROOT/scripts/lib/schemathesis_totals.py" "$role" "$OUT/$role.log" >>"$summary" || true
  done
  echo
  echo "schemathesis $PIN against $BASE, max-examples $MAX_EXAMPLES, seed $SEED:"
  "$VENV/bin/python" "$ROOT/scripts/lib/schemathesis_totals.py" --table "$summary"
  return "$failed"
}

main "$@"
