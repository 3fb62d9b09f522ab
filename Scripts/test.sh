#!/usr/bin/env bash
# Runs the whole test suite against SQLite and against a real, throwaway PostgreSQL, then fuzzes the
# HTTP API from its OpenAPI document on each (Scripts/fuzz-api.sh, schemathesis from PyPI) and kills
# the server under concurrent erasures on each (Scripts/crash-dsr.sh).
# Installs what is missing (libsqlite3-dev, libssl-dev, postgresql, openssl) with apt, starts
# PostgreSQL as a non-root user in a temporary directory on a loopback port, with TLS from a
# throwaway CA, and stops it on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# --- system packages ---------------------------------------------------------------------------
missing=()
for pkg in libsqlite3-dev libssl-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] || missing+=(postgresql)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)  # the README walk-through test runs curl
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

# --- throwaway PostgreSQL on loopback -----------------------------------------------------------
pg_dir=$(mktemp -d /tmp/steward-pg.XXXXXX)
pg_port=$(( 20000 + RANDOM % 20000 ))
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$pg_dir" postgres
  chown postgres "$pg_dir"
fi
stop_pg() {
  as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap stop_pg EXIT

# TLS: a throwaway CA and a certificate for 127.0.0.1, so the suite also connects with
# sslmode=verify-full, as production should.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=steward-test-ca" \
  -keyout "$pg_dir/ca.key" -out "$pg_dir/ca.crt" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$pg_dir/server.key" -out "$pg_dir/server.csr" >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1\n' > "$pg_dir/san.ext"
openssl x509 -req -in "$pg_dir/server.csr" -CA "$pg_dir/ca.crt" -CAkey "$pg_dir/ca.key" -CAcreateserial \
  -days 2 -extfile "$pg_dir/san.ext" -out "$pg_dir/server.crt" >/dev/null 2>&1
chmod 600 "$pg_dir/server.key"
[ "$(id -u)" -eq 0 ] && chown postgres "$pg_dir/server.key" "$pg_dir/server.crt"

log "starting PostgreSQL ($("$pg_bin/postgres" --version)) on 127.0.0.1:$pg_port, TLS on"
as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U steward -A trust --no-sync >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off -c max_connections=300 -c ssl=on -c ssl_cert_file=$pg_dir/server.crt -c ssl_key_file=$pg_dir/server.key" start >/dev/null
psql -h 127.0.0.1 -p "$pg_port" -U steward -d postgres -qc "CREATE DATABASE steward_test" >/dev/null
export STEWARD_TEST_DATABASE_URL="postgres://steward@127.0.0.1:$pg_port/steward_test"
export STEWARD_TEST_TLS_ROOT_CERT="$pg_dir/ca.crt"

# --- house style: the checked-in .swift-format, nothing to fix ------------------------------------
log "format check (Scripts/format.sh --check)"
Scripts/format.sh --check || { echo "run Scripts/format.sh and commit the result"; exit 1; }

# --- build once, run per backend ----------------------------------------------------------------
log "building (debug, with tests)"
swift build --build-tests 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\]' || true
test -x .build/debug/steward || { echo "build failed"; exit 1; }
swift build --build-tests >/dev/null  # fails the script if the build really failed

declare -A counts
for backend in sqlite postgres; do
  log "tests against $backend"
  out=$(mktemp)
  set +e
  # The two-instance staleness contract (TwoInstances) times changes against a 1 s bound: it runs on
  # its own after the parallel run, so its figures are the instances' and not the load of 180 others
  # (under that load the followers' polls take longer than the bound and, failing closed, never
  # answer from memory: correct, and nothing to time).
  STEWARD_TEST_BACKEND=$backend swift test --skip-build --skip TwoInstances 2>&1 | tee "$out" | grep -E '✘|Test run with|error:'
  status=${PIPESTATUS[0]}
  if [ "$status" -eq 0 ]; then
    STEWARD_TEST_BACKEND=$backend swift test --skip-build --filter TwoInstances 2>&1 | tee "$out.alone" | grep -E '✘|Test run with|error:|two instances'
    status=${PIPESTATUS[0]}
    cat "$out.alone" >> "$out"
  fi
  set -e
  main=$(grep -E 'Test run with [0-9]+ tests?' "$out" | head -n 1 | sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' || true)
  alone=$(grep -E 'Test run with [0-9]+ tests?' "$out" | tail -n 1 | sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' || true)
  counts[$backend]="Test run with $(( ${main:-0} + ${alone:-0} )) tests"
  if [ "$status" -ne 0 ]; then
    # Each failing expectation whole (its message and comments run over several lines, between log
    # lines of other tests), last, so the end of the output says why.
    echo "tests FAILED against $backend (exit $status); the failures:"
    awk '/recorded an issue/ { show = 1 }
         /^(✔|✘|􀟈|[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T)/ && !/recorded an issue/ { show = 0 }
         show { print substr($0, 1, 2000) }' "$out" | head -n 300
    [ "$backend" = postgres ] && { echo "PostgreSQL's errors:"; grep -E 'FATAL|ERROR|PANIC' "$pg_dir/server.log" | tail -n 30 || true; }
    exit "$status"
  fi
  rm -f "$out" "$out.alone"
done

# --- the HTTP API fuzzed from its OpenAPI document, on each backend --------------------------------
declare -A fuzz
fuzz_out=$(mktemp)
log "API fuzzing against sqlite (schemathesis, Scripts/fuzz-api.sh)"
Scripts/fuzz-api.sh | tee "$fuzz_out"
fuzz[sqlite]=$(tail -n 1 "$fuzz_out")
log "API fuzzing against postgres"
psql -h 127.0.0.1 -p "$pg_port" -U steward -d postgres -qc "CREATE DATABASE steward_fuzz" >/dev/null
Scripts/fuzz-api.sh "postgres://steward@127.0.0.1:$pg_port/steward_fuzz" | tee "$fuzz_out"
fuzz[postgres]=$(tail -n 1 "$fuzz_out")
rm -f "$fuzz_out"

# --- data subject requests under SIGKILL, on each backend ---------------------------------------------
declare -A crash
crash_out=$(mktemp)
log "erasures under SIGKILL against sqlite (Scripts/crash-dsr.sh)"
Scripts/crash-dsr.sh | tee "$crash_out"
crash[sqlite]=$(tail -n 1 "$crash_out")
log "erasures under SIGKILL against postgres"
psql -h 127.0.0.1 -p "$pg_port" -U steward -d postgres -qc "CREATE DATABASE steward_crash" >/dev/null
Scripts/crash-dsr.sh "postgres://steward@127.0.0.1:$pg_port/steward_crash" | tee "$crash_out"
crash[postgres]=$(tail -n 1 "$crash_out")
rm -f "$crash_out"

log "summary"
for backend in sqlite postgres; do
  n=$(sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' <<<"${counts[$backend]}")
  echo "$backend: $n tests passed (store contract suite, services and HTTP against $backend);" \
    "API fuzzing (schemathesis): ${fuzz[$backend]}, no 500 and no undocumented answer"
  echo "  ${crash[$backend]}"
done
