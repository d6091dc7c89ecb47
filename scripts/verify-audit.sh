#!/usr/bin/env bash
# `make verify-audit TRIAL=<id> [PREFIX=trialwatch]`: recomputes every audit chain of the trial,
# checks each against its recorded head and every anchor, and names the first broken entry.
#   exit 0  intact; 1  broken (the break is printed); 2  could not check (no emulator, no access).
# Target:
#   default   the emulator's developer stack (`make up`, prefix PREFIX) on TRIALWATCH_EMULATOR_PORT;
#   deployed  TABLE_NAME, AUDIT_TABLE_NAME and AUDIT_ANCHOR_BUCKET set (the stack's outputs
#             TableName, AuditTableName, AuditAnchorBucketName) and real credentials in the
#             environment (AWS_PROFILE or keys, AWS_REGION). Read-only: Query, GetObject,
#             ListBucketVersions; nothing is written.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
trial="$1"
prefix="${2:-trialwatch}"

if [ -z "${TABLE_NAME:-}${AUDIT_TABLE_NAME:-}${AUDIT_ANCHOR_BUCKET:-}" ]; then
  export TRIALWATCH_EMULATOR_PORT="${TRIALWATCH_EMULATOR_PORT:-4566}"
  if ! scripts/emulator.sh status >/dev/null 2>&1; then
    echo "verify-audit: no emulator on port $TRIALWATCH_EMULATOR_PORT: start the stack (make up), or set the deployed stack's names" >&2
    exit 2
  fi
  # shellcheck source=lib/emulator_env.sh
  source scripts/lib/emulator_env.sh
  emulator_up
fi

cargo build -q -p trialwatch-local
exec cargo run -q -p trialwatch-local -- verify-audit "$trial" --prefix "$prefix"
