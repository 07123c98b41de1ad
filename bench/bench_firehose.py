#!/usr/bin/env python3
"""Firehose receiver throughput and CPU cost: CloudWatch Logs deliveries through an aws_firehose job.

Starts a counting Loki sink (../shared/tools/sink.py beside the repo, else tests/loki_receiver.py) and
the relay (`python -m relay`) with one aws_firehose job pointed at it. Builds one Firehose delivery of
`--records` records, each a gzip'd CloudWatch Logs DATA_MESSAGE of `--events` log events (spread over
`--groups` log groups), the way CloudWatch -> Firehose -> HTTP endpoint delivers it. Then posts it for
`--seconds` with `--connections` concurrent clients (wrk, a fresh X-Amz-Firehose-Request-Id per request
so the retry memory does not swallow them; httpx if wrk is missing), waits until the sink has every
entry, and reports records/s, entries/s and the relay's CPU time per entry (utime+stime from
/proc/<pid>/stat, the way ../shared/tools/bench_push.py measures).

usage: python bench/bench_firehose.py [--seconds 10] [--records 500] [--events 10] [--connections 4]
                                      [--groups 10] [--gzip-body] [--json]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SINK = ROOT.parent / "shared" / "tools" / "sink.py"
RECEIVER = ROOT / "tests" / "loki_receiver.py"
PATH = "/awsfirehose/api/v1/push"
ARN = "arn:aws:firehose:us-east-1:123456789012:deliverystream/bench-stream"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def wait_http(url: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def backpressure(metrics_url: str) -> dict[str, float]:
    """Requests the relay refused with 503 (Firehose would retry them), by reason."""
    out: dict[str, float] = {}
    with urllib.request.urlopen(metrics_url, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("loki_relay_backpressure_requests_total{"):
                head, _, value = line.rpartition(" ")
                reason = head.split('reason="', 1)[1].split('"', 1)[0]
                out[reason] = out.get(reason, 0) + float(value)
    return out


def delivery(records: int, events: int, groups: int, seed: int = 1) -> bytes:
    """One Firehose request body: `records` gzip'd CloudWatch DATA_MESSAGEs of `events` events each."""
    rnd = random.Random(seed)
    now = int(time.time() * 1000)
    words = ("GET POST /api/v1/orders /healthz user=alice user=bob status=200 status=500 latency_ms=12 "
             "latency_ms=480 region=us-east-1 msg=ok msg=timeout").split()
    recs = []
    for r in range(records):
        g = r % groups
        doc = {
            "messageType": "DATA_MESSAGE",
            "owner": "123456789012",
            "logGroup": f"/aws/lambda/fn-{g}",
            "logStream": f"2026/11/21/[$LATEST]{rnd.randrange(1 << 64):016x}",
            "subscriptionFilters": ["to-firehose"],
            "logEvents": [
                {
                    "id": str(rnd.randrange(10**30)),
                    "timestamp": now + i,
                    "message": f"2026-11-21T05:00:{i % 60:02d}.{i:03d}Z {rnd.randrange(1 << 32):08x} INFO "
                    + " ".join(rnd.choice(words) for _ in range(10)),
                }
                for i in range(events)
            ],
        }
        recs.append({"data": base64.b64encode(gzip.compress(json.dumps(doc).encode())).decode()})
    return json.dumps({"requestId": str(uuid.uuid4()), "timestamp": now, "records": recs}).encode()


CONFIG = """server:
  http_listen_address: 127.0.0.1
  http_listen_port: {mport}
  log_level: warn
clients:
  - url: {sink_url}
    batchwait: 1s
    batchsize: 1048576
scrape_configs:
  - job_name: firehose
    aws_firehose:
      server:
        http_listen_address: 127.0.0.1
        http_listen_port: {port}
      access_key: bench-key
      use_incoming_timestamp: true
"""

WRK_LUA = """
wrk.method = "POST"
local f = io.open("{body}", "rb")
local body = f:read("*a")
f:close()
local n = 0
local prefix = "{prefix}"
request = function()
  n = n + 1
  return wrk.format("POST", nil, {{
    ["Content-Type"] = "application/json",
    {encoding}
    ["X-Amz-Firehose-Access-Key"] = "bench-key",
    ["X-Amz-Firehose-Source-Arn"] = "{arn}",
    ["X-Amz-Firehose-Request-Id"] = prefix .. n .. "-" .. math.random(1, 1000000000),
  }}, body)
end
local threads = {{}}
setup = function(thread) table.insert(threads, thread) end
statuses = {{}}
response = function(status, headers, body)
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %d %d\\n", summary.requests, e.status + e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do io.write(string.format("STATUS %s %d\\n", k, v)) end
  end
end
"""


def drive_wrk(url: str, body_path: str, gz: bool, seconds: int, connections: int, tmp: str) -> tuple[int, int, str]:
    lua = os.path.join(tmp, "post.lua")
    encoding = '["Content-Encoding"] = "gzip",' if gz else ""
    Path(lua).write_text(WRK_LUA.format(body=body_path, prefix=uuid.uuid4().hex[:8] + "-", arn=ARN, encoding=encoding))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s", "-s", lua, url],
                         capture_output=True, text=True)
    result = None
    statuses: dict[str, int] = {}
    for line in out.stdout.splitlines():
        if line.startswith("WRK "):
            reqs, errs, p50, p99, mx = map(int, line.split()[1:])
            result = reqs, errs, f"p50 {p50 / 1000:.1f} ms, p99 {p99 / 1000:.1f} ms, max {mx / 1000:.1f} ms"
        elif line.startswith("STATUS "):
            _, code, n = line.split()
            statuses[code] = statuses.get(code, 0) + int(n)
    if result is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    return result[0], result[1], result[2] + f"; statuses {dict(sorted(statuses.items()))}"


def drive_httpx(url: str, body: bytes, gz: bool, seconds: int, connections: int) -> tuple[int, int, str]:
    import httpx

    headers = {"Content-Type": "application/json", "X-Amz-Firehose-Access-Key": "bench-key", "X-Amz-Firehose-Source-Arn": ARN}
    if gz:
        headers["Content-Encoding"] = "gzip"
    counts = [0, 0]
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(timeout=60) as c:
            while time.monotonic() < end:
                r = c.post(url, content=body, headers={**headers, "X-Amz-Firehose-Request-Id": str(uuid.uuid4())})
                with lock:
                    counts[0] += 1
                    counts[1] += r.status_code != 200

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts[0], counts[1], "(latency: use wrk)"


def run(a: argparse.Namespace) -> dict:
    tmp = tempfile.mkdtemp(prefix="benchfh")
    sport, mport, port = free_port(), free_port(), free_port()
    use_sink = SINK.exists() and not a.receiver
    if use_sink:
        sink_cmd = [sys.executable, str(SINK), "--port", str(sport)]
    else:
        sink_cmd = [sys.executable, str(RECEIVER), "--port", str(sport), "--no-reject-old-samples"]
    sink = subprocess.Popen(sink_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = os.path.join(tmp, "relay.yaml")
    Path(cfg).write_text(CONFIG.format(mport=mport, port=port, sink_url=f"http://127.0.0.1:{sport}/loki/api/v1/push"))
    relay = subprocess.Popen([sys.executable, "-m", "relay", f"-config.file={cfg}"], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "relay.log"), "wb"))
    url = f"http://127.0.0.1:{port}{PATH}"
    try:
        wait_http(f"http://127.0.0.1:{sport}/stats" if use_sink else f"http://127.0.0.1:{sport}/ready")
        wait_http(f"http://127.0.0.1:{mport}/ready")
        body = delivery(a.records, a.events, a.groups)
        wire = gzip.compress(body) if a.gzip_body else body
        body_path = os.path.join(tmp, "body.bin")
        Path(body_path).write_bytes(wire)
        per_request = a.records * a.events

        def entries() -> int:
            return get_json(f"http://127.0.0.1:{sport}/stats")["entries"]

        def reset() -> None:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{sport}/reset", data=b"", method="POST")).read()

        # Warm up (imports, caches, connections), then start from zero.
        warm, warm_errors, _ = drive_httpx(url, wire, a.gzip_body, 1, 1)
        end = time.monotonic() + 60
        while entries() < (warm - warm_errors) * per_request and time.monotonic() < end:
            time.sleep(0.1)
        time.sleep(0.5)
        reset()

        cpu0 = cpu_seconds(relay.pid)
        t0 = time.monotonic()
        if shutil.which("wrk") and not a.httpx:
            reqs, errs, latency = drive_wrk(url, body_path, a.gzip_body, a.seconds, a.connections, tmp)
        else:
            reqs, errs, latency = drive_httpx(url, wire, a.gzip_body, a.seconds, a.connections)
        t_posted = time.monotonic()
        expected = (reqs - errs) * per_request
        # wrk does not count the requests still in flight when it stops (up to one per connection);
        # the relay may have taken them: wait for the expected entries, then for the sink to settle.
        got, end = 0, time.monotonic() + 120
        while time.monotonic() < end:
            got = entries()
            if got >= expected:
                break
            time.sleep(0.05)
        t1 = time.monotonic()
        while time.monotonic() < end:
            time.sleep(1.5)  # > batchwait
            if entries() == got:
                break
            got = entries()
            t1 = time.monotonic() - 1.5
        cpu = cpu_seconds(relay.pid) - cpu0
        dur = t1 - t0
        ok = reqs - errs
        return {
            "requests_ok": ok,
            "request_errors": errs,
            "records_per_request": a.records,
            "entries_per_request": per_request,
            "request_body_bytes": len(wire),
            "expected_entries": expected,
            "delivered_entries": got,
            "seconds_posting": round(t_posted - t0, 2),
            "seconds_until_delivered": round(dur, 2),
            "records_per_s": round(got / a.events / dur),
            "entries_per_s": round(got / dur),
            "relay_cpu_s": round(cpu, 2),
            "relay_cpu_us_per_entry": round(cpu / max(got, 1) * 1e6, 2),
            "relay_cpu_us_per_record": round(cpu / max(ok * a.records, 1) * 1e6, 2),
            "relay_cpu_ms_per_request": round(cpu / max(ok, 1) * 1e3, 2),
            "relay_peak_rss_mb": peak_rss_mb(relay.pid),
            "backpressure_refusals": backpressure(f"http://127.0.0.1:{mport}/metrics"),
            "latency": latency,
            "sink": "shared/tools/sink.py" if use_sink else "tests/loki_receiver.py",
        }
    finally:
        relay.send_signal(signal.SIGTERM)
        try:
            relay.wait(15)
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.wait()
        sink.terminate()
        sink.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--records", type=int, default=500)
    ap.add_argument("--events", type=int, default=10, help="log events per CloudWatch record")
    ap.add_argument("--groups", type=int, default=10, help="distinct log groups among the records")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--gzip-body", action="store_true", help="Content-Encoding: gzip on the whole request")
    ap.add_argument("--httpx", action="store_true", help="drive with httpx threads instead of wrk")
    ap.add_argument("--receiver", action="store_true", help="tests/loki_receiver.py instead of the counting sink")
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    a = ap.parse_args()
    res = run(a)
    if a.json:
        print(json.dumps(res))
        return
    for k, v in res.items():
        print(f"{k:28} {v}")


if __name__ == "__main__":
    main()
