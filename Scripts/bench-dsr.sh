#!/usr/bin/env bash
# Data subject requests end to end (issue 18): on the example store at each size, a release server
# with the shipped policy set to approve GDPR requests automatically; clients submit access and
# erasure requests pre-verified (a service on the person's behalf) and wait for each to complete
# before the next (closed loop), at concurrency 1 and 4. Latency is the server's own: the request's
# receipt to its completion (receivedAt → finishedAt, both written by the server), so the client's
# polling (every 5 ms) does not count in it; throughput is completed requests per second of the run.
# Peak RSS of the server at each size. With PG_URL (an empty database's URL), the 100,000-customer
# run is repeated with Steward's store and the example store on PostgreSQL.
# Writes its figures between the dsr markers in Docs/benchmarks.md.
#   Scripts/bench-dsr.sh     SIZES="10000 100000 1000000" COUNT=200; BIN=path/to/steward skips the build
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"10000 100000 1000000"}
COUNT=${COUNT:-200}
OUT=${OUT:-Docs/benchmarks.md}
if [ -z "${BIN:-}" ]; then
  echo "==> release build"
  swift build -c release --product steward --scratch-path .build-release 2>&1 | tail -n 1
  BIN=$(swift build -c release --scratch-path .build-release --show-bin-path)/steward
fi
work=$(mktemp -d /tmp/steward-dsr.XXXXXX)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
# The shipped policy, with GDPR requests approved by rule.
cp -r Policies "$work/policies"
python3 - "$work/policies/requests.yaml" <<'PY'
import pathlib, sys
path = pathlib.Path(sys.argv[1])
text = path.read_text()
text = text.replace("      verification: required\n", "      verification: required\n      approval: automatic\n", 1)
path.write_text(text)
PY

run() {  # run NAME CUSTOMERS [postgres-url]
  local name=$1 n=$2 url=${3:-}
  local dir="$work/$name" store=() env=()
  if [ -n "$url" ]; then
    store=(--database "$url")
    "$BIN" demo init --dir "$dir" --customers "$n" --postgres "$url" >/dev/null 2>&1
    cp "$work/policies/requests.yaml" "$dir/policies/requests.yaml"
    policies="$dir/policies"
  else
    "$BIN" demo init --dir "$dir" --customers "$n" >/dev/null 2>&1
    env=(STEWARD_CRM_DATABASE="$dir/crm.sqlite" STEWARD_MARKETING_DATABASE="$dir/marketing.sqlite")
    policies="$work/policies"
  fi
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  env "${env[@]}" STEWARD_LOG_LEVEL=error "$BIN" serve --data-dir "$dir/data" --port "$port" --policies "$policies" \
    "${store[@]}" 2>"$dir/server.log" &
  echo $! > "$work/$name.pid"
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
  key=$("$BIN" keys create --role service --name bench --json --data-dir "$dir/data" "${store[@]}" 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])')
  local emails="$dir/emails.txt"
  if [ -n "$url" ]; then
    psql "$url" -Atc "SELECT email FROM crm.customers WHERE email IS NOT NULL ORDER BY random() LIMIT $((COUNT * 6 + 100))" > "$emails"
  else
    python3 -c "import sqlite3,sys; [print(r[0]) for r in sqlite3.connect(sys.argv[1]).execute('SELECT email FROM customers WHERE email IS NOT NULL ORDER BY random() LIMIT ?', ($((COUNT * 6 + 100)),))]" "$dir/crm.sqlite" > "$emails"
  fi
  python3 - "$port" "$key" "$emails" "$COUNT" "$(cat "$work/$name.pid")" "$name" "$n" >> "$work/rows" <<'PY'
import datetime, json, statistics, sys, threading, time, urllib.request
port, key, emails_path, count, pid, name, customers = sys.argv[1:8]
count = int(count)
base = f"http://127.0.0.1:{port}"
emails = [l.strip() for l in open(emails_path) if l.strip()]
def call(method, path, body=None):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode() if body else None, method=method,
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())
def parse(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
def one(kind, email):
    request = call("POST", "/v1/requests", {"regime": "gdpr", "type": kind, "subject": {"email": email}, "verified": "pre_verified"})
    while True:
        if request["status"] in ("completed", "partially_completed", "failed", "denied", "cancelled"):
            if request["status"] != "completed":
                sys.exit(f"request {request['id']} ended {request['status']}")
            return parse(request["finishedAt"]) - parse(request["receivedAt"]), parse(request["receivedAt"]), parse(request["finishedAt"])
        time.sleep(0.005)
        request = call("GET", f"/v1/requests/{request['id']}")
pool = iter(emails)
lock = threading.Lock()
def measure(kind, concurrency, total):
    results, started = [], [0]
    def worker():
        while True:
            with lock:
                if started[0] >= total: return
                started[0] += 1
                email = next(pool)
            results.append(one(kind, email))
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads: t.start()
    for t in threads: t.join()
    latencies = sorted(r[0] * 1000 for r in results)
    span = max(r[2] for r in results) - min(r[1] for r in results)
    return statistics.median(latencies), latencies[int(len(latencies) * 0.95) - 1], len(results) / span
for _ in range(10): one("access", next(pool))  # warm-up
figures = {}
for kind in ("access", "erasure"):
    for concurrency in (1, 4):
        figures[(kind, concurrency)] = measure(kind, concurrency, count)
        p50, p95, rate = figures[(kind, concurrency)]
        print(f"   {name} {kind} c={concurrency}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, {rate:.0f} req/s", file=sys.stderr)
hwm = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM"))
cells = "|".join(f"{p50:.1f}|{p95:.1f}|{rate:.0f}" for p50, p95, rate in figures.values())
print(f"{name}|{customers}|{cells}|{hwm // 1024}")
PY
  kill "$(cat "$work/$name.pid")"; wait "$(cat "$work/$name.pid")" 2>/dev/null || true; rm -f "$work/$name.pid"
  rm -rf "$dir"
}

: > "$work/rows"
for n in $SIZES; do
  echo "==> SQLite, $n customers"
  run "sqlite-$n" "$n"
done
if [ -n "${PG_URL:-}" ]; then
  echo "==> PostgreSQL, 100000 customers"
  run "postgres-100000" 100000 "$PG_URL"
fi
cat "$work/rows"
python3 - "$OUT" "$COUNT" "$work/rows" <<'PY'
import datetime, pathlib, re, sys
out, count, rows = pathlib.Path(sys.argv[1]), sys.argv[2], [l.strip().split("|") for l in open(sys.argv[3]) if l.strip()]
table = ("| store | customers | access p50 / p95 (c=1) | access/s (c=1) | access p50 / p95 (c=4) | access/s (c=4) | "
         "erasure p50 / p95 (c=1) | erasure/s (c=1) | erasure p50 / p95 (c=4) | erasure/s (c=4) | peak RSS |\n"
         "|---|---|---|---|---|---|---|---|---|---|---|\n")
for r in rows:
    name, n = r[0], int(r[1])
    f = r[2:14]
    table += (f"| {name.split('-')[0]} | {n:,} | {f[0]} / {f[1]} ms | {f[2]} | {f[3]} / {f[4]} ms | {f[5]} | "
              f"{f[6]} / {f[7]} ms | {f[8]} | {f[9]} / {f[10]} ms | {f[11]} | {r[14]} MB |\n")
text = (f"<!-- dsr:begin (written by Scripts/bench-dsr.sh) -->\n"
        f"**Data subject requests** (`Scripts/bench-dsr.sh`, {datetime.date.today()}, release build, {count} requests per cell).\n"
        f"Access and erasure requests submitted pre-verified and approved by rule, against the example store (CRM and\n"
        f"marketing: six collections, references followed, holds kept); latency is the server's own, from receipt to\n"
        f"completion (both systems' tasks done, receipts audited); each client waits for its request before the next.\n"
        f"Targets on SQLite at concurrency 4: access p50 ≤ 15 ms and ≥ 150/s; erasure p50 ≤ 30 ms and ≥ 75/s; peak RSS\n"
        f"flat as the store grows.\n\n" + table + "<!-- dsr:end -->")
doc = out.read_text()
pattern = re.compile(r"<!-- dsr:begin.*?<!-- dsr:end -->", re.S)
doc = pattern.sub(lambda _: text, doc) if pattern.search(doc) else doc.rstrip() + "\n\n" + text + "\n"
out.write_text(doc)
PY
echo "figures written to $OUT"
