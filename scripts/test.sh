#!/usr/bin/env bash
# Runs the whole test suite from a clean clone: installs Redis, Chromium and PostgreSQL
# from Debian's packages when missing, the Python packages into .venv, then lint, the
# whole pytest suite on SQLite (browser tests included), and the integration and security
# tests again on a throwaway PostgreSQL (then the chaos test, on PostgreSQL only).
#
#   bash scripts/test.sh                               # lint, SQLite, then PostgreSQL
#   KILN_TEST_DATABASES=sqlite bash scripts/test.sh    # lint and the SQLite pass only
#   KILN_TEST_DATABASES=postgres bash scripts/test.sh  # lint and the PostgreSQL passes only
#   bash scripts/test.sh tests/integration -x          # arguments go to every pytest run
#
# Arguments that name test files or folders replace each pass's own selection (the whole
# suite on SQLite; tests/integration tests/security on PostgreSQL) and skip the
# chaos step; other arguments (-x, -k, -q) are added to every pass.
set -euo pipefail
cd "$(dirname "$0")/.."

databases=${KILN_TEST_DATABASES:-both}
case "$databases" in
  sqlite | postgres | both) ;;
  *)
    echo "KILN_TEST_DATABASES must be sqlite, postgres or both, not '$databases'" >&2
    exit 2
    ;;
esac
want() { [ "$databases" = both ] || [ "$databases" = "$1" ]; }

need=()
command -v redis-server >/dev/null || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -q
  $sudo apt-get install -y -q "${need[@]}"
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
.venv/bin/mypy core bindings widgets datasources workspaces
.venv/bin/python manage.py makemigrations --check --dry-run >/dev/null

# Started before any test runs, so that a missing postgresql package is installed (and
# a cluster that cannot start is reported) up front; stopped and removed on any exit.
if want postgres; then
  pg_env=$(bash scripts/postgres.sh start)
  eval "$pg_env"
  trap 'bash scripts/postgres.sh stop "$KILN_PG_DIR"' EXIT
fi

# Path arguments replace a pass's own selection; the rest go to every pass.
named_paths=false
for arg in "$@"; do
  if [ "${arg#-}" = "$arg" ] && [ -e "${arg%%::*}" ]; then named_paths=true; fi
done

failed=()
# pytest_pass NAME [ENV ARGUMENTS...] -- PYTEST-ARGS...: one timed pytest run; a failure is
# remembered and the next pass still runs, so one run reports every database's failures.
pytest_pass() {
  local name=$1 started status
  shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  echo
  echo "=== $name ==="
  started=$(date +%s)
  set +e
  env "${envs[@]}" .venv/bin/pytest "$@"
  status=$?
  set -e
  echo "=== $name: exit $status after $(($(date +%s) - started))s ==="
  if [ $status -eq 5 ]; then
    echo "pytest collected no tests in '$name': that is a failure" >&2
  fi
  [ $status -eq 0 ] || failed+=("$name")
}

if want sqlite; then
  if $named_paths; then
    pytest_pass "SQLite" -u DATABASE_URL -- "$@"
  else
    # The chaos test is PostgreSQL's (two workers writing at once): its step is below.
    pytest_pass "SQLite: whole suite" -u DATABASE_URL -- --ignore=tests/chaos "$@"
  fi
fi

if want postgres; then
  pg=DATABASE_URL=$KILN_TEST_POSTGRES_URL
  if $named_paths; then
    pytest_pass "PostgreSQL" "$pg" -- "$@"
  else
    # Not the browser tests: they check pages, which the SQLite pass drives; every view
    # they load runs on PostgreSQL in the integration tests (docs/testing.md).
    pytest_pass "PostgreSQL: integration, workers, security" "$pg" -- \
      tests/integration tests/security "$@"
    # ---- Chaos step (PostgreSQL): N runs through the API while workers are killed, Redis
    # restarts and the SMTP fixture misbehaves; KILN_CHAOS_RUNS=2000 for the long run.
    if [ -d tests/chaos ]; then
      pytest_pass "PostgreSQL: chaos" "$pg" -- tests/chaos "$@"
    fi
  fi
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo >&2
  echo "Failed: ${failed[*]}" >&2
  exit 1
fi
