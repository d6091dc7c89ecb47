#!/usr/bin/env bash
# `make token ROLE=site_staff TRIAL=t1,t2 SITES=t1/s1,t2/s2`: prints a dev JWT
# (HS256, TRIALWATCH_DEV_JWT_SECRET, default trialwatch-dev-secret-change-me)
# that the local stack's authorizer accepts. TTL=seconds (default 3600), SUB=subject.
# SITES are (trial, site) pairs `trialId/siteId`; a bare site id counts only when TRIAL
# names exactly one trial. TRIAL on an admin token limits the admin to those trials.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ -z "${ROLE:-}" ]; then
  echo "usage: make token ROLE=patient|site_staff|sponsor|auditor|admin [TRIAL=t1[,t2]] [PATIENT=p1] [SITES=t1/s1,t2/s2] [TTL=3600] [SUB=name]" >&2
  exit 2
fi

args=(--role "$ROLE" --trial "${TRIAL:-}" --patient "${PATIENT:-}" --sites "${SITES:-}" --ttl "${TTL:-3600}")
if [ -n "${SUB:-}" ]; then args+=(--sub "$SUB"); fi
exec cargo run -q -p trialwatch-local -- token "${args[@]}"
