#!/usr/bin/env bash
# The duplicate-dependency gate (`make test` runs it): one HTTPS stack and one crypto provider.
#   - What `sam build` links (the default members, the Lambda functions, with their features
#     unified as `cargo lambda build --bin <fn>` resolves them): one version each of hyper,
#     h2, http-body, rustls, hyper-rustls, tokio-rustls, rustls-webpki, and ring as the
#     one crypto provider (no aws-lc-rs), and no regex engine (regex-automata: tracing-subscriber's
#     env-filter, which lambda_runtime's default `tracing` feature turns on; about 0.2 MB).
#   - The whole workspace (dev tools too): one version each of the same HTTPS crates. The
#     crypto rule is not applied there: local/'s JWT library and dev-only reqwest clients use ring.
# Prints every offender with `cargo tree -i`, so the fix starts from the dependency path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STACK=(hyper h2 http-body rustls hyper-rustls tokio-rustls rustls-webpki)
status=0

# `name version` of every package in the normal (non-dev, non-build) graph of the selection.
packages() {
  cargo tree -q --locked -e normal --prefix none -f '{p}' "$@" | awk '{print $1, $2}' | sort -u
}

check() {
  local label="$1"; shift
  local list
  list="$(packages "$@")"
  for crate in "${STACK[@]}"; do
    local versions
    versions="$(awk -v c="$crate" '$1 == c {print $2}' <<<"$list" | paste -sd' ' -)"
    if [ "$(wc -w <<<"$versions")" -gt 1 ]; then
      echo "dup-gate: $label links $crate $versions; one HTTPS stack only. Paths:" >&2
      local oldest="${versions%% *}"
      cargo tree -q -e normal -i "$crate@${oldest#v}" "$@" >&2 || true
      status=1
    fi
  done
  if [ "$label" = "the Lambda functions" ] && grep -q '^aws-lc-rs ' <<<"$list"; then
    echo "dup-gate: $label link aws-lc-rs; ring (the SDK client's rustls-ring mode) is the one provider (aws-lc-sys alone is ~1.5 MB of each binary). aws-lc-rs comes from:" >&2
    cargo tree -q -e normal -i aws-lc-rs "$@" >&2 || true
    status=1
  fi
  if [ "$label" = "the Lambda functions" ] && grep -q '^regex-automata ' <<<"$list"; then
    echo "dup-gate: $label link regex-automata (about 0.2 MB of each binary): tracing-subscriber's env-filter, or lambda_runtime's default 'tracing' feature; trialwatch::telemetry filters by level alone. It comes from:" >&2
    cargo tree -q -e normal -i regex-automata "$@" >&2 || true
    status=1
  fi
}

check "the Lambda functions"
check "the workspace" --workspace
if [ "$status" = 0 ]; then
  echo "dup-gate: one hyper, h2, http-body, rustls stack; the functions link one crypto provider and no regex engine" >&2
fi
exit "$status"
