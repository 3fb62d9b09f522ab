#!/usr/bin/env bash
# Connection hardening under load (issue 15): IDLE idle connections and SLOW clients trickling a
# request head one byte a second, all held open against `steward serve`, while /health is asked
# twenty times a second on a connection of its own. Reports /health latency (p50, p99, max) beside
# a run with no load, and when the server closed the idle and slow connections (it should, at
# STEWARD_HTTP_IDLE_TIMEOUT). Writes its figures between the connections markers in Docs/benchmarks.md.
#   IDLE=2000 SLOW=500 TIMEOUT=10 Scripts/bench-connections.sh      # BIN=path/to/steward to skip the build
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${IDLE:-2000}
SLOW=${SLOW:-500}
TIMEOUT=${TIMEOUT:-10}
OUT=${OUT:-Docs/benchmarks.md}
if [ -z "${BIN:-}" ]; then
  echo "==> release build"
  swift build -c release --product steward 2>&1 | tail -n 1
  BIN=$(swift build -c release --show-bin-path)/steward
fi
work=$(mktemp -d /tmp/steward-conn.XXXXXX)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(( 20000 + RANDOM % 20000 ))
STEWARD_LOG_LEVEL=warning STEWARD_DATA_DIR=$work/data STEWARD_HTTP_IDLE_TIMEOUT=$TIMEOUT \
  "$BIN" serve --port "$port" > "$work/server.log" 2>&1 &
server=$!
until curl -sf "localhost:$port/ready" > /dev/null; do sleep 0.2; done

python3 - "$port" "$IDLE" "$SLOW" "$TIMEOUT" "$OUT" "$BIN" <<'PY'
import asyncio, datetime, pathlib, re, resource, sys, time
port, idle_n, slow_n, timeout, out, binary = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

async def health_latencies(seconds, rate=20):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
        await reader.readexactly(length)
        samples.append((time.monotonic() - start) * 1000)
        await asyncio.sleep(max(0, 1 / rate - (time.monotonic() - start)))
    writer.close()
    return samples

def summary(samples):
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    return {"n": len(s), "p50": pick(0.5), "p99": pick(0.99), "max": s[-1]}

async def hold(kind, opened_at, closed_at, index):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        closed_at[index] = -1  # not accepted
        return
    opened_at[index] = time.monotonic()
    async def trickle():
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except (ConnectionError, OSError):
                return
            await asyncio.sleep(1)
    task = asyncio.create_task(trickle()) if kind == "slow" else None
    try:
        data = await asyncio.wait_for(reader.read(1), timeout * 3 + 30)
        closed_at[index] = time.monotonic() if data == b"" else None
    except asyncio.TimeoutError:
        closed_at[index] = None  # still open long after the timeout
    except (ConnectionError, OSError):
        closed_at[index] = time.monotonic()  # reset by the server
    if task: task.cancel()
    writer.close()

async def main():
    baseline = summary(await health_latencies(10))
    idle_open, idle_closed = [None] * idle_n, [None] * idle_n
    slow_open, slow_closed = [None] * slow_n, [None] * slow_n
    holders = [asyncio.create_task(hold("idle", idle_open, idle_closed, i)) for i in range(idle_n)]
    holders += [asyncio.create_task(hold("slow", slow_open, slow_closed, i)) for i in range(slow_n)]
    await asyncio.sleep(1)
    loaded = summary(await health_latencies(max(5, timeout - 2)))
    await asyncio.gather(*holders)
    def lifetimes(opened, closed):
        lives = [c - o for o, c in zip(opened, closed) if o is not None and c not in (None, -1)]
        return len([o for o in opened if o is not None]), len(lives), (min(lives) if lives else 0), (max(lives) if lives else 0)
    return baseline, loaded, lifetimes(idle_open, idle_closed), lifetimes(slow_open, slow_closed)

baseline, loaded, idle, slow = asyncio.run(main())
build = "release" if "/release/" in binary else "debug"
ok = "met" if loaded["p99"] <= 100 and idle[1] == idle[0] == idle_n and slow[1] == slow[0] == slow_n else "**not met**"
block = f"""<!-- connections:begin (written by Scripts/bench-connections.sh) -->
**Connections** (`Scripts/bench-connections.sh`, {datetime.date.today()}, {build} build, SQLite,
`STEWARD_HTTP_IDLE_TIMEOUT={timeout:g}`): {idle_n:,} idle connections and {slow_n:,} clients sending a request
head one byte a second, all opened at once, while `/health` is asked 20 times a second on a
keep-alive connection of its own.

| measure | figure | target |
|---|---|---|
| `/health` without that load | p50 {baseline['p50']:.2f} ms, p99 {baseline['p99']:.2f} ms, max {baseline['max']:.2f} ms ({baseline['n']} requests) | — |
| `/health` with it | p50 {loaded['p50']:.2f} ms, **p99 {loaded['p99']:.2f} ms**, max {loaded['max']:.2f} ms ({loaded['n']} requests) | p99 <= 100 ms |
| idle connections closed by the server | {idle[1]:,} of {idle[0]:,} accepted, after {idle[2]:.1f}–{idle[3]:.1f} s | all, at the idle timeout |
| slow-head connections closed by the server | {slow[1]:,} of {slow[0]:,} accepted, after {slow[2]:.1f}–{slow[3]:.1f} s | all, at the idle timeout |

Status: {ok}.
<!-- connections:end -->"""
path = pathlib.Path(out)
text = path.read_text()
pattern = re.compile(r"<!-- connections:begin.*?<!-- connections:end -->", re.S)
text = pattern.sub(block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
path.write_text(text)
print(block)
PY
