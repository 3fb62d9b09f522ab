#!/usr/bin/env bash
# Soak (issue 15): DURATION seconds of a mixed load at about half the measured capacity against a
# release `steward serve` on SQLite — 90% consent checks of seeded people, 9% single records of new
# people, 1% bulk bodies of 200 lines of which 20 are invalid — sampling the server's resident memory
# every 10 s. Memory at the end must be within 10% of memory after the warm-up (the first 10% of
# the run), with no 5xx. Writes its figures between the soak markers in Docs/benchmarks.md.
#   DURATION=1800 SUBJECTS=20000 Scripts/soak.sh         # BIN=path/to/steward to skip the build
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-1800}
SUBJECTS=${SUBJECTS:-20000}
CONNECTIONS=${CONNECTIONS:-32}
OUT=${OUT:-Docs/benchmarks.md}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
if [ -z "${BIN:-}" ]; then
  echo "==> release build"
  swift build -c release --product steward 2>&1 | tail -n 1
  BIN=$(swift build -c release --show-bin-path)/steward
fi
work=$(mktemp -d /tmp/steward-soak.XXXXXX)
server=""
sampler=""
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
export STEWARD_LOG_LEVEL=warning STEWARD_DATA_DIR=$work/data STEWARD_ROOT_KEY=$(head -c 32 /dev/urandom | base64)

echo "==> seeding $SUBJECTS subjects"
python3 - "$SUBJECTS" "$work/seed.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("email,purpose,decision,noticeId,noticeVersion\n")
    for i in range(n):
        f.write(f"user{i}@example.com,analytics,{'granted' if i % 2 else 'denied'},privacy-policy,2026-01\n")
PY
"$BIN" consent import "$work/seed.csv" 2>/dev/null | tail -n 1

port=$(( 20000 + RANDOM % 20000 ))
"$BIN" serve --port "$port" 2> "$work/server.log" &
server=$!
until curl -sf "localhost:$port/ready" > /dev/null; do sleep 0.2; done
key=$("$BIN" keys create --role service --name soak | tail -n 1)

cat > "$work/check.lua" <<LUA
local headers = { ["Authorization"] = "Bearer $key" }
request = function()
  return wrk.format("GET", "/v1/consents/check?email=user" .. math.random(0, $SUBJECTS - 1) .. "%40example.com&purpose=analytics", headers)
end
LUA

cat > "$work/mix.lua" <<LUA
local auth = "Bearer $key"
local n = 0
local run = math.random(1, 1000000000)
local function bulk()
  local lines = {}
  for i = 1, 200 do
    n = n + 1
    if i % 10 == 0 then
      lines[i] = '{"subject":{"email":"not-an-email-' .. n .. '"},"purpose":"analytics","decision":"denied"}'
    else
      lines[i] = '{"subject":{"email":"bulk' .. run .. '-' .. n .. '@example.com"},"purpose":"sale","decision":"denied"}'
    end
  end
  return table.concat(lines, "\n")
end
request = function()
  n = n + 1
  local r = n % 100
  if r < 90 then
    return wrk.format("GET", "/v1/consents/check?email=user" .. math.random(0, $SUBJECTS - 1) .. "%40example.com&purpose=analytics", { ["Authorization"] = auth })
  elseif r < 99 then
    local body = '{"subject":{"email":"rec' .. run .. '-' .. n .. '@example.com"},"purpose":"analytics",' ..
      '"decision":"granted","notice":{"id":"privacy-policy","version":"2026-01"},"method":"web_form"}'
    return wrk.format("POST", "/v1/consents", { ["Authorization"] = auth, ["Content-Type"] = "application/json" }, body)
  else
    return wrk.format("POST", "/v1/consents/bulk", { ["Authorization"] = auth, ["Content-Type"] = "application/x-ndjson" }, bulk())
  end
end
LUA
echo "==> capacity: 15 s of the same mix, closed loop, $CONNECTIONS connections"
wrk -t1 -c"$CONNECTIONS" -d15s --latency -s "$work/mix.lua" "http://127.0.0.1:$port" > "$work/capacity.txt"
capacity=$(awk '/Requests\/sec/ {print $2}' "$work/capacity.txt")
latency=$(python3 - "$work/capacity.txt" <<'PY'
import re, sys
v, u = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)", open(sys.argv[1]).read(), re.M).groups()
print(float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u])
PY
)
# Closed loop with think time (wrk 4.1 has no open-loop mode): each connection waits so that all of
# them together offer about half the capacity: CONNECTIONS / (capacity / 2) per request, less the
# median time the request itself takes.
delay=$(python3 -c "print(max(1, round($CONNECTIONS / ($capacity / 2) * 1000 - $latency)))")
echo "capacity $capacity req/s (p50 $latency ms); each of $CONNECTIONS connections waits $delay ms"
{ cat "$work/mix.lua"; echo "delay = function() return $delay end"; } > "$work/paced-mix.lua"

( while kill -0 "$server" 2>/dev/null; do
    echo "$(date +%s) $(awk '/VmRSS/ {print $2}' /proc/$server/status)"; sleep 10
  done ) > "$work/rss.txt" &
sampler=$!
echo "==> soak: $DURATION s"
wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$work/paced-mix.lua" "http://127.0.0.1:$port" > "$work/soak.txt"
cat "$work/soak.txt"
metrics=$(curl -s "localhost:$port/metrics")
# Answers by status over the whole run (the capacity run included): "500:3 503:12"; 503 is bulk.busy
# or store.busy, documented refusals with Retry-After; a 500 is a failure.
statuses=$(echo "$metrics" | python3 -c '
import re, sys, collections
counts = collections.Counter()
for line in sys.stdin:
    m = re.match(r"steward_http_requests_total\{(.*)\} ([\d.e+]+)", line)
    if m:
        status = re.search(r"status=\"(\d+)\"", m.group(1)).group(1)
        counts[status] += int(float(m.group(2)))
print(" ".join(f"{k}:{v}" for k, v in sorted(counts.items())))')
echo "answers by status: $statuses"
kill "$sampler"; sampler=""

python3 - "$work" "$OUT" "$DURATION" "$SUBJECTS" "$CONNECTIONS" "$capacity" "$delay" "$statuses" "$BIN" <<'PY'
import datetime, pathlib, re, sys
work, out, duration, subjects, conns, capacity, delay, statuses, binary = sys.argv[1:]
by_status = dict(item.split(":") for item in statuses.split()) if statuses else {}
errors = sum(int(v) for k, v in by_status.items() if k.startswith("5") and k != "503")
samples = [tuple(map(int, l.split())) for l in pathlib.Path(work, "rss.txt").read_text().split("\n") if l.strip()]
start = samples[0][0]
warm_end = start + int(duration) // 10
after_warm = next(rss for t, rss in samples if t >= warm_end)
end = samples[-1][1]
peak = max(rss for _, rss in samples)
text = pathlib.Path(work, "soak.txt").read_text()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
requests = int(re.search(r"(\d+) requests in", text).group(1))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
non2xx = int(m.group(1)) if m else 0
def ms(t):
    v, u = re.match(r"([\d.]+)(us|ms|s)", t).groups(); return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u]
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1)); p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
drift = (end - after_warm) / after_warm * 100
build = "release" if "/release/" in binary else "debug"
ok = "met" if abs(drift) <= 10 and errors == 0 else "**not met**"
block = f"""<!-- soak:begin (written by Scripts/soak.sh) -->
**Soak** (`Scripts/soak.sh`, {datetime.date.today()}, {build} build, SQLite, {int(subjects):,} seeded people):
{int(duration) / 60:.0f} minutes of 90% checks, 9% records of new people and 1% bulk bodies of 200 lines (20
invalid), {conns} connections each waiting {delay} ms: about half the {float(capacity):,.0f} requests/s the same mix
reached closed-loop just before.

| measure | figure | target |
|---|---|---|
| load | {requests:,} requests, {rps:,.0f}/s; p50 {p50:.2f} ms, p99 {p99:.2f} ms; non-2xx {non2xx} | — |
| answers by status (`steward_http_requests_total`, capacity run included) | {', '.join(f'{k}: {int(v):,}' for k, v in sorted(by_status.items()))} | no 500; 503 only `bulk.busy` / `store.busy` |
| resident memory | {after_warm / 1024:.0f} MB after the warm-up (first 10%), {end / 1024:.0f} MB at the end (**{drift:+.1f}%**), peak {peak / 1024:.0f} MB | end within 10% of after warm-up |

Status: {ok}.
<!-- soak:end -->"""
path = pathlib.Path(out)
doc = path.read_text()
pattern = re.compile(r"<!-- soak:begin.*?<!-- soak:end -->", re.S)
doc = pattern.sub(block, doc) if pattern.search(doc) else doc.rstrip() + "\n\n" + block + "\n"
path.write_text(doc)
print(block)
PY
