#!/usr/bin/env bash
# `make fuzz [FUZZ_MINUTES=1] [FUZZ_TARGETS="submission vitals fhir sqs_record"]`:
# runs each cargo-fuzz target of fuzz/ for FUZZ_MINUTES minutes (libFuzzer,
# one process), then prints minutes, executions and crashes per target.
#
# A fresh machine has stable Rust only: cargo-fuzz (pinned) is installed from
# crates.io into .tools/cargo-fuzz, and the build runs with RUSTC_BOOTSTRAP=1,
# which lets stable rustc take the `-Z` flags cargo-fuzz passes, and with
# `--sanitizer none` (AddressSanitizer needs a nightly std; the code under
# test is safe Rust, so panics and assertion failures are what we look for).
#
# Fuzz targets live in their own workspace (fuzz/Cargo.toml); fuzz/Cargo.lock is
# seeded from the root Cargo.lock, so they build the product's exact versions.
# Committed seeds are in fuzz/seeds/<target>; the working corpus grows in
# fuzz/corpus/<target> and a crash input lands in fuzz/artifacts/<target>
# (both ignored by git). Reproduce one with
#   RUSTC_BOOTSTRAP=1 .tools/cargo-fuzz/bin/cargo-fuzz run -s none <target> fuzz/artifacts/<target>/crash-...
# and turn it into a regression test in `make test`. Not part of `make test`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CARGO_FUZZ_VERSION="0.13.2"
TOOLS="${TRIALWATCH_TOOLS_DIR:-$ROOT/.tools}/cargo-fuzz"
MINUTES="${FUZZ_MINUTES:-1}"
TARGETS="${FUZZ_TARGETS:-submission vitals fhir sqs_record}"
# The fuzz build has its own flags (coverage instrumentation): keep it out of
# the workspace's target dir, where it would only evict the test build.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$ROOT/fuzz/target}"
export RUSTC_BOOTSTRAP=1

say() { echo "fuzz: $*" >&2; }

install() {
  if [ -x "$TOOLS/bin/cargo-fuzz" ] && [ "$(cat "$TOOLS/.version" 2>/dev/null)" = "$CARGO_FUZZ_VERSION" ]; then
    return 0
  fi
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS"
  mkdir -p "$TOOLS"
  # Its own target dir: cargo-fuzz is built without the fuzz flags.
  CARGO_TARGET_DIR="$TOOLS/build" cargo install --locked --quiet --root "$TOOLS" cargo-fuzz --version "$CARGO_FUZZ_VERSION"
  rm -rf "$TOOLS/build"
  echo "$CARGO_FUZZ_VERSION" >"$TOOLS/.version"
}

# Inputs libFuzzer saved for a panic, a timeout or running out of memory.
findings() { find "fuzz/artifacts/$1" -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' | wc -l; }

main() {
  install
  cp Cargo.lock fuzz/Cargo.lock
  say "building targets: $TARGETS (release, coverage-instrumented; the first build takes a while)"
  local t
  for t in $TARGETS; do
    "$TOOLS/bin/cargo-fuzz" build --fuzz-dir fuzz -s none "$t"
  done
  local summary crashed=0
  summary="$(mktemp)"
  for t in $TARGETS; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "fuzz/seeds/$t"
    local log="fuzz/artifacts/$t/last-run.log" rc=0 before after
    before="$(findings "$t")"
    say "running $t for $MINUTES minute(s)"
    # -max_len: a body is at most 256 KiB; 64 KiB keeps mutation effective.
    "$TOOLS/bin/cargo-fuzz" run --fuzz-dir fuzz -s none "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
      -max_total_time=$((MINUTES * 60)) -max_len=65536 -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
      >"$log" 2>&1 || rc=$?
    after="$(findings "$t")"
    local execs corpus
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    corpus="$(find "fuzz/corpus/$t" -type f | wc -l)"
    local found=$((after - before))
    if [ "$rc" != 0 ] && [ "$found" = 0 ]; then found=1; fi
    [ "$found" = 0 ] || { crashed=1; say "$t: crash (see $log and fuzz/artifacts/$t/)"; grep -m3 -E "panicked|ERROR: libFuzzer" "$log" >&2 || true; }
    printf '| %s | %s | %s | %s | %s |\n' "$t" "$MINUTES" "${execs:-?}" "$corpus" "$found" >>"$summary"
  done
  echo
  echo "| target | minutes | executions | corpus | crashes |"
  echo "|---|---|---|---|---|"
  cat "$summary"
  rm -f "$summary"
  return "$crashed"
}

main "$@"
