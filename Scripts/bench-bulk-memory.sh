#!/usr/bin/env bash
# Peak resident memory of `steward serve` while it answers one POST /v1/consents/bulk of 64 MiB,
# once of invalid lines and once of valid ones (issue 15: under 200 MB each), each on a fresh server
# and database so the peaks are the request's own. Writes its figures between the bulk-memory
# markers in Docs/benchmarks.md (the rest of the file is left as it is).
#   BYTES=67108864 Scripts/bench-bulk-memory.sh          # BIN=path/to/steward to skip the release build
set -euo pipefail
cd "$(dirname "$0")/.."
BYTES=${BYTES:-67108864}
OUT=${OUT:-Docs/benchmarks.md}
if [ -z "${BIN:-}" ]; then
  echo "==> release build"
  swift build -c release --product steward 2>&1 | tail -n 1
  BIN=$(swift build -c release --show-bin-path)/steward
fi
command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl; }
work=$(mktemp -d /tmp/steward-bulkmem.XXXXXX)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export STEWARD_LOG_LEVEL=warning STEWARD_ROOT_KEY=$(head -c 32 /dev/urandom | base64)

echo "==> generating two bodies of $BYTES bytes"
python3 - "$BYTES" "$work" <<'PY'
import sys
size, work = int(sys.argv[1]), sys.argv[2]
def write(name, line):
    with open(f"{work}/{name}.jsonl", "w") as f:
        written, i = 0, 0
        while True:
            text = line(i) + "\n"
            if written + len(text) > size: break
            f.write(text); written += len(text); i += 1
    print(name, i, "lines")
write("invalid", lambda i: '{"subject":{"email":"not-an-email-%d"},"purpose":"analytics","decision":"granted"}' % i)
write("valid", lambda i: '{"subject":{"email":"bulk%d@example.com"},"purpose":"sale","decision":"denied"}' % i)
PY

run() {  # $1 = body name; prints: lines seconds peak_rss_kb rss_before_kb answer_bytes status
  local data="$work/data-$1" port=$(( 20000 + RANDOM % 20000 ))
  STEWARD_DATA_DIR=$data "$BIN" serve --port "$port" > "$work/server-$1.log" 2>&1 &
  server=$!
  until curl -sf "localhost:$port/ready" > /dev/null; do sleep 0.2; done
  local key; key=$(STEWARD_DATA_DIR=$data "$BIN" keys create --role service --name bench | tail -n 1)
  local before; before=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
  local start; start=$(date +%s.%N)
  local status; status=$(curl -s -o "$work/answer-$1.json" -w '%{http_code}' -XPOST "localhost:$port/v1/consents/bulk" \
    -H "Authorization: Bearer $key" -H 'Content-Type: application/x-ndjson' --data-binary "@$work/$1.jsonl")
  local seconds; seconds=$(echo "$(date +%s.%N) - $start" | bc)
  local peak; peak=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  echo "$(wc -l < "$work/$1.jsonl") $seconds $peak $before $(wc -c < "$work/answer-$1.json") $status"
}
command -v bc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc; }
echo "==> invalid lines"; read -r il is ip ib ia ist < <(run invalid); echo "$il lines, $is s, peak $ip kB, answer $ia bytes, HTTP $ist"
echo "==> valid lines";   read -r vl vs vp vb va vst < <(run valid);   echo "$vl lines, $vs s, peak $vp kB, answer $va bytes, HTTP $vst"

python3 - "$OUT" "$BYTES" "$BIN" "$il" "$is" "$ip" "$ib" "$ia" "$ist" "$vl" "$vs" "$vp" "$vb" "$va" "$vst" <<'PY'
import sys, datetime, pathlib, re
out, size, binary = sys.argv[1], int(sys.argv[2]), sys.argv[3]
il, is_, ip, ib, ia, ist, vl, vs, vp, vb, va, vst = sys.argv[4:]
mb = lambda kb: int(kb) / 1024
build = "release" if "/release/" in binary else "debug"
ok = lambda kb: "met" if mb(kb) < 200 else "**not met**"
block = f"""<!-- bulk-memory:begin (written by Scripts/bench-bulk-memory.sh) -->
**Bulk memory** (`Scripts/bench-bulk-memory.sh`, {datetime.date.today()}, {build} build, one fresh server
and SQLite database per body): peak resident memory (`VmHWM`) of `steward serve` answering one
`POST /v1/consents/bulk` of {size / 1048576:.0f} MiB.

| body | lines | time | RSS before | peak RSS | answer | target: peak < 200 MB |
|---|---|---|---|---|---|---|
| invalid lines (bad email) | {int(il):,} | {float(is_):.1f} s | {mb(ib):.0f} MB | **{mb(ip):.0f} MB** | {int(ia):,} bytes, HTTP {ist} | {ok(ip)} |
| valid lines (new subjects) | {int(vl):,} | {float(vs):.1f} s | {mb(vb):.0f} MB | **{mb(vp):.0f} MB** | {int(va):,} bytes, HTTP {vst} | {ok(vp)} |
<!-- bulk-memory:end -->"""
path = pathlib.Path(out)
text = path.read_text()
pattern = re.compile(r"<!-- bulk-memory:begin.*?<!-- bulk-memory:end -->", re.S)
text = pattern.sub(block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
path.write_text(text)
print(block)
PY
