#!/usr/bin/env bash
# Builds schema-v2.sqlite: a database written by Steward at schema version 2 (text ids), which the
# migration test opens with the current code. Run once with a binary built from commit 1cddc4f:
#   Tests/Fixtures/make-schema-v2.sh /path/to/old/steward
# The root key is fixed (below, also in the test) so the test can read the sealed identities.
set -euo pipefail
bin=$1
out=$(cd "$(dirname "$0")" && pwd)/schema-v2.sqlite
work=$(mktemp -d)
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
export STEWARD_DATA_DIR=$work STEWARD_ROOT_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= STEWARD_LOG_LEVEL=error
port=$(( 30000 + RANDOM % 20000 ))
STEWARD_POLICIES_DIR="$(cd "$(dirname "$0")/../../Policies" && pwd)" "$bin" serve --port "$port" & server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
key=$("$bin" keys create --role admin --name fixture --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
revoked=$("$bin" keys create --role service --name revoked --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$bin" keys revoke "$revoked" >/dev/null
api() { curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' "$@"; }
u="http://127.0.0.1:$port"
token=$(api -X POST "$u/v1/consents" -d '{"subject":{"email":"ada@example.com"},"purpose":"marketing.email","decision":"granted","method":"web_form","notice":{"id":"privacy-policy","version":"2026-01"},"proof":{"ip":"203.0.113.7","userAgent":"fixture"}}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["confirmation"]["token"])')
api -X POST "$u/v1/consents/confirm" -d "{\"token\":\"$token\"}" >/dev/null
api -X POST "$u/v1/consents" -d '{"subject":{"email":"ada@example.com"},"purpose":"analytics","decision":"granted","method":"api","notice":{"id":"privacy-policy","version":"2026-01"}}' >/dev/null
api -X POST "$u/v1/consents" -H 'Sec-GPC: 1' -d '{"subject":{"phone":"+14155550100"},"purpose":"analytics","decision":"denied","method":"api"}' >/dev/null
grace=$(api -X POST "$u/v1/consents" -d '{"subject":{"externalId":"cus_42"},"purpose":"analytics","decision":"granted","method":"api","notice":{"id":"privacy-policy","version":"2026-01"}}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["subjectId"])')
api -X POST "$u/v1/subjects/$grace/identities" -d '{"deviceId":"device-7"}' >/dev/null
phone=$(api "$u/v1/subjects?phone=%2B14155550100" | python3 -c 'import json,sys; print(json.load(sys.stdin)["subjectId"])')
api -X POST "$u/v1/subjects/$grace/merge" -d "{\"source\":\"$phone\"}" >/dev/null
kill $server; wait $server 2>/dev/null || true
sqlite3 "$work/steward.sqlite" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
cp "$work/steward.sqlite" "$out"
echo "wrote $out ($(sqlite3 "$out" 'SELECT count(*) FROM audit_log') audit entries)"
