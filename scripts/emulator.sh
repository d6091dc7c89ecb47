#!/usr/bin/env bash
# Local AWS emulator (moto server) for TrialWatch: install | start | stop | status | url.
# moto is pinned and lives in a project-local venv, so a fresh machine needs only python3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TRIALWATCH_VENV:-$ROOT/.venv}"
STATE="${TRIALWATCH_STATE_DIR:-$ROOT/.local}"
PORT="${TRIALWATCH_EMULATOR_PORT:-4566}"
MOTO_VERSION="5.2.5"
PIDFILE="$STATE/emulator-$PORT.pid"
LOGFILE="$STATE/emulator-$PORT.log"

install() {
  if [ -x "$VENV/bin/moto_server" ] && "$VENV/bin/python" -c "import moto,sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    return 0
  fi
  echo "emulator: installing moto[server]==$MOTO_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
}

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

start() {
  install
  mkdir -p "$STATE"
  if running; then
    echo "emulator: already running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))" >&2
    return 0
  fi
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$LOGFILE" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$PORT/moto-api/" >/dev/null 2>&1; then
      echo "emulator: ready on http://127.0.0.1:$PORT (pid $(cat "$PIDFILE"))" >&2
      return 0
    fi
    if ! running; then
      echo "emulator: exited during start; log follows" >&2
      cat "$LOGFILE" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "emulator: not ready after 20 s; see $LOGFILE" >&2
  return 1
}

stop() {
  if running; then
    kill "$(cat "$PIDFILE")" 2>/dev/null || true
    for _ in $(seq 1 50); do running || break; sleep 0.1; done
    running && kill -9 "$(cat "$PIDFILE")" 2>/dev/null || true
    echo "emulator: stopped (port $PORT)" >&2
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running on $PORT"; else echo "stopped"; exit 1; fi ;;
  url) echo "http://127.0.0.1:$PORT" ;;
  *) echo "usage: $0 install|start|stop|status|url" >&2; exit 2 ;;
esac
