#!/usr/bin/env bash
# `make lint`: template.yaml through three linters, offline and without AWS credentials.
#   sam validate --lint   SAM's transform and cfn-lint on the transformed template
#   cfn-lint              every rule, warnings included: 0 errors, 0 warnings
#   checkov               security checks: 0 failed; each skip is inline in template.yaml with its reason
# The least-privilege test of the function roles is a Rust test (local/provision/tests/template_iam.rs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/tools.sh install
eval "$(scripts/tools.sh path)"

# No account is touched: no credentials, no profile, no metadata service lookups.
export AWS_ACCESS_KEY_ID="" AWS_SECRET_ACCESS_KEY="" AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN

step() { printf '\n==> %s\n' "$*" >&2; }

step "sam validate --lint --region us-east-1"
sam validate --lint --region us-east-1 --template-file template.yaml

step "cfn-lint template.yaml"
# cfn-lint exits non-zero on any error (2), warning (4) or informational (8) finding.
cfn-lint --format parseable template.yaml
echo "cfn-lint: 0 errors, 0 warnings, 0 informational"

step "checkov --framework cloudformation"
# Exits non-zero on any failed check; --quiet --compact prints the summary and failures only.
checkov --skip-download --quiet --compact --framework cloudformation -f template.yaml
