#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with schemathesis (PyPI): the built debug binary
# serves a fresh data directory on loopback (or, given a PostgreSQL URL, that database) with an admin
# key, and every answer to generated and mutated requests must be a documented status with a
# documented content type and body schema, and none a 500; and no request the document admits may be
# refused for its shape (schema_valid_request_accepted, in schemathesis_hooks.py: only the codes an
# operation lists in x-steward-semantic-refusals). The bulk route is fuzzed too, as JSON lines; drift
# and discovery read the example store's CRM.
# Stops the server on exit.
#   Scripts/fuzz-api.sh [postgres://…]      EXAMPLES=30 SEED=1 (a fixed seed: CI runs are repeatable)
#   VERBOSE=1 prints schemathesis's whole report (phases, links followed, warnings).
# Hypothesis's too_slow health check is off: it times data generation, so a loaded machine (the
# bulk route's JSON-lines bodies are large) failed the run without any answer being wrong.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/.build/debug/steward
[ -x "$bin" ] || { echo "build first: swift build --build-tests"; exit 1; }
command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl; }
# One version, so a CI run is repeatable: its generators and checks change between releases.
schemathesis_version=4.32.5
python3 -c "import schemathesis, sys; sys.exit(schemathesis.__version__ != '$schemathesis_version')" 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "schemathesis==$schemathesis_version"

work=$(mktemp -d /tmp/steward-fuzz.XXXXXX)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
database=()
[ -n "${1:-}" ] && database=(--database "$1")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cd "$root"  # the server reads ./Policies
# The example store, so that drift and discovery read a real system (the CRM) while the marketing
# system's connection stays unset (their refusal is fuzzed too).
"$bin" demo init --dir "$work/demo" --customers 200 >/dev/null 2>&1
STEWARD_CRM_DATABASE="$work/demo/crm.sqlite" STEWARD_LOG_LEVEL=error "$bin" serve --data-dir "$work/data" --port "$port" "${database[@]}" 2>"$work/server.log" &
server=$!
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/ready" >/dev/null || { cat "$work/server.log"; echo "the server did not start"; exit 1; }
key=$("$bin" keys create --role admin --name fuzz --json --data-dir "$work/data" "${database[@]}" 2>/dev/null |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])')

cd "$work"  # schemathesis and hypothesis keep their caches in the working directory
set +e
SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$root/Scripts" python3 -m schemathesis.cli run \
  "http://127.0.0.1:$port/openapi.json" -H "Authorization: Bearer $key" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,unsupported_method,schema_valid_request_accepted,error_codes_are_catalogued \
  --max-examples "${EXAMPLES:-30}" --seed "${SEED:-1}" --suppress-health-check=too_slow --no-color > "$work/fuzz.txt" 2>&1
status=$?
set -e
if [ "$status" -ne 0 ]; then
  sed -n '/FAILURES\|ERRORS/,$p' "$work/fuzz.txt" | head -n 150
  echo "API fuzzing FAILED (schemathesis exit $status)"
  exit "$status"
fi
[ -n "${VERBOSE:-}" ] && cat "$work/fuzz.txt"
# The count line, e.g. "1350 generated, 1350 passed".
grep -E '^ +[0-9]+ generated' "$work/fuzz.txt" | tail -n 1 | sed -E 's/^ +//'
