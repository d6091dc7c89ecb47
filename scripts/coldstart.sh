#!/usr/bin/env bash
# `make coldstart [RUNS=11]`: builds every template function and the hello-world baseline
# in one `cargo build --release` (same profile, same run), then measures each under a
# loopback Lambda Runtime API against the emulator (local/src/coldstart.rs) and prints
# the table: stripped and zipped size, init, the init warm-up call, first and warm
# response, peak RSS, medians of RUNS cold starts and ratios to hello-world.
#   BIN_DIR=<dir>  measure binaries built elsewhere (e.g. an older commit's) instead of building;
#                  it must hold hello-world too.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/emulator_env.sh
. scripts/lib/emulator_env.sh

if [ -z "${TRIALWATCH_EMULATOR_PORT:-}" ]; then
  TRIALWATCH_EMULATOR_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
export TRIALWATCH_EMULATOR_PORT
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

if [ -z "${BIN_DIR:-}" ]; then
  # The binaries the template deploys: `Metadata.BuildProperties.Binary` of each function.
  mapfile -t binaries < <(sed -n 's/^ *Binary: *\([A-Za-z0-9_-]*\) *$/\1/p' template.yaml | sort -u)
  packages=()
  for b in "${binaries[@]}" hello-world; do packages+=(-p "$b"); done
  echo "coldstart: cargo build --release ${packages[*]}" >&2
  cargo build --release "${packages[@]}"
  BIN_DIR="$TARGET/release"
fi
cargo build -q -p trialwatch-local --bin coldstart

emulator_up
trap emulator_down EXIT
"$TARGET/debug/coldstart" --bin-dir "$BIN_DIR" --runs "${RUNS:-11}"
