#!/usr/bin/env bash
# Local AWS emulator (moto server) for TrialWatch: install | start | stop | status | url.
#
# moto is pinned and lives in a project-local venv, so a fresh machine needs only
# python3. It listens on 127.0.0.1:$TRIALWATCH_EMULATOR_PORT (default 4566); each
# port has its own pid and log file under .local/, so several runs can coexist.
# Point the AWS SDK at it with AWS_ENDPOINT_URL="$(scripts/emulator.sh url)".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TRIALWATCH_VENV:-$ROOT/.venv}"
STATE="${TRIALWATCH_STATE_DIR:-$ROOT/.local}"
PORT="${TRIALWATCH_EMULATOR_PORT:-4566}"
MOTO_VERSION="5.2.5"
PIDFILE="$STATE/emulator-$PORT.pid"
LOGFILE="$STATE/emulator-$PORT.log"
# moto imports a lot of Python; on a busy 2-core machine the first start can take a while.
READY_TIMEOUT_SECONDS="${TRIALWATCH_EMULATOR_READY_TIMEOUT:-90}"

say() { echo "emulator: $*" >&2; }

installed() {
  [ -x "$VENV/bin/moto_server" ] &&
    "$VENV/bin/python" -c "import moto,sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null
}

# Debian's python3 ships venv without ensurepip unless python3-venv is installed.
ensure_venv_support() {
  if python3 -c "import ensurepip, venv" 2>/dev/null; then
    return 0
  fi
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "python3 cannot create venvs; installing python3-venv with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  else
    say "python3 cannot create venvs: install python3-venv (Debian/Ubuntu) and retry"
    return 1
  fi
}

install() {
  installed && return 0
  command -v python3 >/dev/null 2>&1 || { say "python3 is required"; return 1; }
  mkdir -p "$STATE"
  # Two runs starting on a fresh machine must not install into the same venv at once.
  exec 9>"$STATE/install.lock"
  command -v flock >/dev/null 2>&1 && flock 9
  if ! installed; then
    ensure_venv_support
    say "installing moto[server]==$MOTO_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
  exec 9>&-
}

pid_of() { cat "$PIDFILE" 2>/dev/null || true; }

# The pid file names a live moto_server of ours (not a recycled pid of something else).
ours() {
  local pid
  pid="$(pid_of)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server
}

port_busy() {
  python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(0 if s.connect_ex(('127.0.0.1', $PORT)) == 0 else 1)"
}

# The health probe: moto's own API answers on the port. This, not a pid,
# decides "running": a pid file can outlive its server, or name one that is
# still exiting and no longer answers.
ready() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$PORT/moto-api/" 2>/dev/null
  else
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/moto-api/', timeout=2)" 2>/dev/null
  fi
}

running() { ready; }

# Ends our emulator process (TERM, then KILL after 5 s) and waits for the port to be free.
kill_ours() {
  local pid
  pid="$(pid_of)"
  if ours; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$PIDFILE"
  for _ in $(seq 1 50); do port_busy || break; sleep 0.1; done
}

start() {
  install
  mkdir -p "$STATE"
  if ready; then
    if ours; then
      say "already running on 127.0.0.1:$PORT (pid $(pid_of))"
    else
      say "an emulator already answers on 127.0.0.1:$PORT; reusing it"
    fi
    return 0
  fi
  if ours; then
    say "pid $(pid_of) on port $PORT does not answer; restarting it"
    kill_ours
  fi
  rm -f "$PIDFILE"
  # A server that is still exiting may hold the port for a moment.
  for _ in $(seq 1 30); do port_busy || break; sleep 0.1; done
  if port_busy; then
    say "port $PORT is taken by a process that is not an answering emulator: stop it, or set TRIALWATCH_EMULATOR_PORT to a free port"
    return 1
  fi
  # moto_server with atomic, O(items) TransactWriteItems (see scripts/moto_server.py),
  # in a session of its own: Ctrl-C in a terminal signals the whole foreground
  # process group, and the emulator must outlive the runner's drain (`make up`,
  # `make demo` and `make test` stop it afterwards, from their EXIT traps).
  "$VENV/bin/python" -c '
import os, sys
try:
    os.setsid()
except OSError:
    pass  # already a group leader (job control): a terminal Ctrl-C does not reach it
os.execv(sys.executable, [sys.executable] + sys.argv[1:])
' "$ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$PORT" >"$LOGFILE" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + READY_TIMEOUT_SECONDS))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ready; then
      say "ready on http://127.0.0.1:$PORT (pid $(pid_of))"
      return 0
    fi
    if ! kill -0 "$(pid_of)" 2>/dev/null; then
      say "exited during start on port $PORT: see $LOGFILE (last lines below); is the port free? set TRIALWATCH_EMULATOR_PORT to another"
      tail -n 5 "$LOGFILE" >&2
      rm -f "$PIDFILE"
      return 1
    fi
    sleep 0.2
  done
  say "not answering on port $PORT after ${READY_TIMEOUT_SECONDS} s: see $LOGFILE; raise TRIALWATCH_EMULATOR_READY_TIMEOUT on a busy machine"
  kill_ours
  return 1
}

stop() {
  if ours; then
    kill_ours
    say "stopped (port $PORT)"
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  install) install ;;
  venv-support) ensure_venv_support ;;
  start) start ;;
  stop) stop ;;
  status) if running; then if ours; then echo "running on $PORT (pid $(pid_of))"; else echo "running on $PORT"; fi; else echo "stopped (nothing answers on $PORT)"; exit 1; fi ;;
  url) echo "http://127.0.0.1:$PORT" ;;
  *) echo "usage: $0 install|start|stop|status|url   (port: TRIALWATCH_EMULATOR_PORT, default 4566)" >&2; exit 2 ;;
esac
