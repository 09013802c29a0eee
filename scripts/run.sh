#!/usr/bin/env bash
# Installs Kiln into .venv and starts it with a demo app on embedded defaults:
# SQLite, Celery tasks run in the web process, and the built-in dev mailbox.
# With REDIS_URL set, a Celery worker starts too. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    # Debian ships venv separately.
    [ "$(id -u)" = 0 ] && { apt-get update -q && apt-get install -y -q python3-venv; }
    rm -rf .venv && "$PYTHON" -m venv .venv
  fi
fi
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
# This script serves plain http on 127.0.0.1: secure-only cookies would never be sent
# back. Behind https, leave SECURE_COOKIES unset (secure by default).
export SECURE_COOKIES=${SECURE_COOKIES:-false}

if ! .venv/bin/python manage.py migrate --noinput; then
  echo "migrate failed. A database made before the layout re-cut (its migrations were" >&2
  echo "reset, see docs/decisions.md) must be removed: rm var/kiln.sqlite3" >&2
  exit 1
fi
.venv/bin/python manage.py seed_demo

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

.venv/bin/python manage.py devmailbox &
pids+=($!)
if [ -n "${REDIS_URL:-}" ]; then
  .venv/bin/celery -A kiln worker --loglevel=INFO &
  pids+=($!)
  .venv/bin/celery -A kiln beat --loglevel=INFO --schedule var/celerybeat-schedule &
  pids+=($!)
else
  # No beat without Redis: this loop retries runs that failed for a passing reason.
  .venv/bin/python manage.py sweep_outbox --loop 15 &
  pids+=($!)
fi

addr=${KILN_ADDR:-127.0.0.1:8000}
echo
echo "Kiln is starting on http://$addr/  (sign in as demo / kiln-demo)"
echo "Dev mailbox: http://$addr/devmailbox/ (SMTP on ${KILN_DEVMAILBOX_HOST:-127.0.0.1}:${KILN_DEVMAILBOX_PORT:-1025})"
echo
.venv/bin/gunicorn kiln.wsgi --bind "$addr" --workers 2 --threads 4 --access-logfile - &
pids+=($!)
wait -n "${pids[@]}"
