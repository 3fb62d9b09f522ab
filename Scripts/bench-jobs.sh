#!/usr/bin/env bash
# Job start latency (issue 16): how soon an idle runner starts a job enqueued in its own process —
# the in-process wake-up and the lease's own write — beside the commit of the enqueue itself (one
# write, the floor a lease cannot beat), on SQLite and, given a URL, on PostgreSQL. Uses scratch
# databases. Writes its figures between the jobs markers in Docs/benchmarks.md.
#   Scripts/bench-jobs.sh [postgres://…]        COUNT=1000; BIN=path/to/steward skips the build
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-1000}
OUT=${OUT:-Docs/benchmarks.md}
if [ -z "${BIN:-}" ]; then
  echo "==> release build"
  swift build -c release --product steward --scratch-path .build-release 2>&1 | tail -n 1
  BIN=$(swift build -c release --scratch-path .build-release --show-bin-path)/steward
fi
work=$(mktemp -d /tmp/steward-jobs.XXXXXX)
trap 'rm -rf "$work"' EXIT
run() { STEWARD_LOG_LEVEL=error "$BIN" jobs latency --count "$COUNT" --data-dir "$work/$1" "${@:2}"; }
echo "==> SQLite ($COUNT jobs, one at a time)"
sqlite=$(run sqlite)
echo "$sqlite"
postgres=""
if [ -n "${1:-}" ]; then
  echo "==> PostgreSQL"
  postgres=$(run pg --database "$1")
  echo "$postgres"
fi
python3 - "$OUT" "$COUNT" "$sqlite" "$postgres" <<'PY'
import datetime, pathlib, re, sys
out, count, sqlite, postgres = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def block(name, text):
    return "".join(f"| {name} | {line.split(':', 1)[0]} | {line.split(':', 1)[1].strip()} |\n" for line in text.strip().splitlines())
table = "| database | measure | figures |\n|---|---|---|\n" + block("SQLite", sqlite) + (block("PostgreSQL (loopback)", postgres) if postgres else "")
text = (f"<!-- jobs:begin (written by Scripts/bench-jobs.sh) -->\n"
        f"**Job start latency** (`Scripts/bench-jobs.sh`, {datetime.date.today()}, release build, {count} jobs\n"
        f"enqueued one at a time into an idle in-process runner). Target: a job starts within 10 ms of its\n"
        f"enqueue's commit. \"start / one commit\" compares the wake-up plus the lease's write with one write.\n\n"
        + table + "<!-- jobs:end -->")
doc = out.read_text()
pattern = re.compile(r"<!-- jobs:begin.*?<!-- jobs:end -->", re.S)
doc = pattern.sub(lambda _: text, doc) if pattern.search(doc) else doc.rstrip() + "\n\n" + text + "\n"
out.write_text(doc)
PY
echo "figures written to $OUT"
