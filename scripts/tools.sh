#!/usr/bin/env bash
# Deploy and lint tools, pinned from PyPI into project-local venvs: install | path | versions.
#
#   .tools/sam-venv      aws-sam-cli, cfn-lint, cargo-lambda, ziglang (zig cross-links arm64)
#   .tools/checkov-venv  checkov alone: its pins clash with SAM's
#
# A fresh machine needs only python3 (with venv support) and the Rust toolchain.
# `eval "$(scripts/tools.sh path)"` puts sam, cfn-lint, cargo-lambda and checkov on PATH.
# Idempotent: a venv whose pins already match is left alone; concurrent runs wait on a lock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${TRIALWATCH_TOOLS_DIR:-$ROOT/.tools}"
SAM_VENV="$TOOLS/sam-venv"
CHECKOV_VENV="$TOOLS/checkov-venv"

SAM_PINS=(
  "aws-sam-cli==1.170.0"
  "cfn-lint==1.58.0"
  "cargo-lambda==1.9.2"
  "ziglang==0.13.0"
)
CHECKOV_PINS=("checkov==3.3.30")

say() { echo "tools: $*" >&2; }

# A venv is current when the stamp it was built with lists exactly today's pins.
current() { # venv pins...
  local venv="$1"; shift
  [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.pins" 2>/dev/null)" = "$*" ]
}

make_venv() { # venv pins...
  local venv="$1"; shift
  current "$venv" "$@" && return 0
  say "installing $* into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
  echo "$*" >"$venv/.pins"
}

install() {
  command -v python3 >/dev/null 2>&1 || { say "python3 is required"; return 1; }
  if current "$SAM_VENV" "${SAM_PINS[@]}" && current "$CHECKOV_VENV" "${CHECKOV_PINS[@]}"; then
    return 0
  fi
  # The emulator script knows how to get venv support onto a bare Debian.
  "$ROOT/scripts/emulator.sh" venv-support
  mkdir -p "$TOOLS"
  # Two runs starting on a fresh machine must not install into the same venv at once.
  exec 8>"$TOOLS/install.lock"
  command -v flock >/dev/null 2>&1 && flock 8
  make_venv "$SAM_VENV" "${SAM_PINS[@]}"
  make_venv "$CHECKOV_VENV" "${CHECKOV_PINS[@]}"
  exec 8>&-
}

path() {
  # cargo-lambda finds zig through `python3 -m ziglang` or a zig on PATH: the venv gives both.
  echo "export PATH='$SAM_VENV/bin:$CHECKOV_VENV/bin':\"\$PATH\""
  echo "export SAM_CLI_TELEMETRY=0"
}

versions() {
  "$SAM_VENV/bin/sam" --version
  "$SAM_VENV/bin/cfn-lint" --version
  "$SAM_VENV/bin/cargo-lambda" lambda --version
  "$SAM_VENV/bin/python" -m ziglang version
  "$CHECKOV_VENV/bin/checkov" --version
}

case "${1:-}" in
  install) install ;;
  path) path ;;
  versions) versions ;;
  *) echo "usage: $0 install|path|versions" >&2; exit 2 ;;
esac
