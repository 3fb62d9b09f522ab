#!/usr/bin/env bash
# Crash test of data subject request execution (issue 18): in each round, 20 erasures are approved
# at once against the example store and the server is killed with SIGKILL at a random moment while
# they run, then restarted. At the end every request must be terminal within 60 s of the last
# restart, each erasure's receipt must count exactly the rows the subject had (no effect lost, none
# applied twice), no value of an erased subject may be left, no row of anyone else may have changed,
# and the audit chain must verify.
#   Scripts/crash-dsr.sh            20 rounds (CI)
#   LONG=1 Scripts/crash-dsr.sh     200 rounds
#   ROUNDS=N SEED=S Scripts/crash-dsr.sh
#   Scripts/crash-dsr.sh postgres://…   Steward's store on PostgreSQL (an empty database)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${BIN:-$root/.build/debug/steward}"
[ -x "$bin" ] || { echo "build first: swift build --build-tests"; exit 1; }
rounds="${ROUNDS:-$([ -n "${LONG:-}" ] && echo 200 || echo 20)}"
work="$(mktemp -d)"
trap 'kill -9 $(cat "$work/server.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

database=()
[ -n "${1:-}" ] && database=(--database "$1")
customers=$((rounds * 20 * 3 / 2 + 500))
"$bin" demo init --dir "$work/demo" --customers "$customers" >/dev/null
"$bin" keys create --role admin --name crash --json --data-dir "$work/data" "${database[@]}" 2>/dev/null |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])' > "$work/key"

DATABASE="${1:-}" BIN="$bin" WORK="$work" ROUNDS="$rounds" SEED="${SEED:-$RANDOM}" POLICIES="$root/Policies" python3 - <<'PY'
import json, os, random, sqlite3, subprocess, sys, threading, time, urllib.error, urllib.request

bin, work, rounds, seed = os.environ["BIN"], os.environ["WORK"], int(os.environ["ROUNDS"]), int(os.environ["SEED"])
rng = random.Random(seed)
key = open(f"{work}/key").read().strip()
crm_path, marketing_path = f"{work}/demo/crm.sqlite", f"{work}/demo/marketing.sqlite"
env = dict(os.environ, STEWARD_CRM_DATABASE=crm_path, STEWARD_MARKETING_DATABASE=marketing_path,
           STEWARD_JOBS_LEASE_SECONDS="2", STEWARD_JOBS_POLL_SECONDS="0.2", STEWARD_LOG_LEVEL="error")
store = ["--database", os.environ["DATABASE"]] if os.environ.get("DATABASE") else []
import socket
with socket.socket() as probe:  # a port the kernel says is free
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
base = f"http://127.0.0.1:{port}"
server = None

def start():
    global server
    server = subprocess.Popen([bin, "serve", "--data-dir", f"{work}/data", "--port", str(port), "--policies", os.environ["POLICIES"]] + store,
                              env=env, stdout=subprocess.DEVNULL, stderr=open(f"{work}/server.log", "a"))
    open(f"{work}/server.pid", "w").write(str(server.pid))
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/ready", timeout=1)
            return time.monotonic()
        except Exception:
            time.sleep(0.05)
    sys.exit("the server did not start: " + open(f"{work}/server.log").read()[-2000:])

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")

def dump(path):
    db = sqlite3.connect(path)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {t: {row[0]: row for row in db.execute(f'SELECT * FROM "{t}"')} for t in tables}

crm, marketing = dump(crm_path), dump(marketing_path)
# Subjects: customers with an email, each with the rows an erasure must reach.
db = sqlite3.connect(crm_path)
mdb = sqlite3.connect(marketing_path)
emails = [r[0] for r in db.execute("SELECT email FROM customers WHERE email IS NOT NULL ORDER BY id")]
rng.shuffle(emails)
emails = emails[: rounds * 20]
expected, owned = {}, {"customers": set(), "orders": set(), "payments": set(), "support_tickets": set(), "subscriptions": set(), "email_events": set()}
for email in emails:
    customers = [r[0] for r in db.execute("SELECT id FROM customers WHERE email = ?", (email,))]
    orders = [r[0] for c in customers for r in db.execute("SELECT id FROM orders WHERE customer_id = ?", (c,))]
    payments = [r[0] for o in orders for r in db.execute("SELECT id FROM payments WHERE order_id = ?", (o,))]
    tickets = [r[0] for c in customers for r in db.execute("SELECT id FROM support_tickets WHERE customer_id = ?", (c,))]
    subscriptions = [r[0] for r in mdb.execute("SELECT id FROM subscriptions WHERE email = ?", (email,))]
    events = [r[0] for s in subscriptions for r in mdb.execute("SELECT id FROM email_events WHERE subscription_id = ?", (s,))]
    expected[email] = {("crm", "customers", "deleted"): len(customers), ("crm", "support_tickets", "deleted"): len(tickets),
                       ("crm", "orders", "changed"): len(orders), ("crm", "payments", "changed"): len(payments),
                       ("marketing", "subscriptions", "deleted"): len(subscriptions), ("marketing", "email_events", "deleted"): len(events)}
    for name, ids in [("customers", customers), ("orders", orders), ("payments", payments), ("support_tickets", tickets),
                      ("subscriptions", subscriptions), ("email_events", events)]:
        owned[name].update(ids)
db.close(); mdb.close()

started = time.monotonic()
start()
requests = {}
kills_during_work = 0
for round in range(rounds):
    batch = emails[round * 20:(round + 1) * 20]
    for email in batch:
        status, body = call("POST", "/v1/requests", {"regime": "gdpr", "type": "erasure", "subject": {"email": email}, "verified": "pre_verified"})
        assert status == 201, (status, body)
        requests[body["id"]] = email
    ids = [i for i, e in requests.items() if e in batch]
    def approve(i):
        try:
            call("POST", f"/v1/requests/{i}/approve")
        except Exception:
            pass  # the server was killed under it: re-approved after the restart
    threads = [threading.Thread(target=approve, args=(i,)) for i in ids]
    for t in threads: t.start()
    time.sleep(rng.uniform(0.0, 0.6))
    # Was work in flight when it died? (a request still executing)
    server.kill(); server.wait()
    for t in threads: t.join()
    last_restart = start()
    for i in ids:
        status, body = call("GET", f"/v1/requests/{i}")
        if body.get("status") == "verified":
            call("POST", f"/v1/requests/{i}/approve")
        elif body.get("status") == "executing":
            kills_during_work += 1

# Every request terminal within 60 s of the last restart.
deadline = last_restart + 60
while True:
    open_requests = [i for i in requests if call("GET", f"/v1/requests/{i}")[1].get("status") not in ("completed", "partially_completed", "failed", "denied", "cancelled")]
    if not open_requests:
        break
    if time.monotonic() > deadline:
        sys.exit(f"FAILED: {len(open_requests)} requests not terminal 60 s after the last restart, e.g. {call('GET', '/v1/requests/' + open_requests[0])[1]}")
    time.sleep(0.2)
settled = time.monotonic() - last_restart

failures = []
resumed = 0
for i, email in requests.items():
    status, body = call("GET", f"/v1/requests/{i}")
    if body["status"] != "completed":
        failures.append(f"{i}: {body['status']}")
        continue
    counts = {}
    for system in body.get("systems", []):
        if system.get("attempts", 1) > 1:
            resumed += 1
        for collection in system["receipt"]["collections"]:
            for what in ("deleted", "changed"):
                counts[(system["system"], collection["collection"], what)] = collection[what]
    for k, v in expected[email].items():
        if counts.get(k, 0) != v:
            failures.append(f"{i}: {k} counted {counts.get(k, 0)}, the subject had {v}")

crm_after, marketing_after = dump(crm_path), dump(marketing_path)
for before, after in [(crm, crm_after), (marketing, marketing_after)]:
    for table, rows in before.items():
        for id, row in rows.items():
            if id in owned.get(table, set()):
                continue
            if after[table].get(id) != row:
                failures.append(f"{table} {id} of another customer changed")
text = repr(crm_after) + repr(marketing_after)
left = [e for e in emails if e in text]
if left:
    failures.append(f"{len(left)} erased emails are still in the store")
for id in owned["orders"]:
    order = crm_after["orders"].get(id)
    if order is None or order[1] is not None:
        failures.append(f"order {id}: kept and unlinked expected, found {order}")

server.terminate(); server.wait()
audit = subprocess.run([bin, "audit", "verify", "--data-dir", f"{work}/data"] + store, capture_output=True, text=True, env=env)
if audit.returncode != 0:
    failures.append("audit verify: " + audit.stdout[-500:] + audit.stderr[-500:])
if failures:
    print("\n".join(failures[:40]))
    sys.exit(f"crash-dsr FAILED: {len(failures)} findings (seed {seed})")
print(f"crash-dsr ({'postgres' if store else 'sqlite'}): {rounds} rounds, {len(requests)} erasures, {rounds} SIGKILLs ({kills_during_work} requests were executing when the server died), "
      f"{resumed} tasks resumed after a kill; every request completed {settled:.1f} s after the last restart; "
      f"every receipt counts exactly the subject's rows; no erased value left, no other row changed; audit verified "
      f"(seed {seed}, {time.monotonic() - started:.0f} s)")
PY
