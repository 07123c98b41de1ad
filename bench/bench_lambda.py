#!/usr/bin/env python3
"""Benchmark the aws_lambda job: entries/s and relay CPU-µs per entry.

1. cloudwatch: one CloudWatch Logs subscription event of 1,000 log events, POSTed repeatedly
   by --connections clients for --seconds.
2. s3: one S3 notification for a gzip'd ALB access log of --s3-mb MB (uncompressed) held by a
   moto server; timed from the POST until the sink has every line.

Loki is /work/shared/tools/sink.py (a counting sink); relay CPU is user+sys from
/proc/<pid>/stat (the relay and its children), as /work/shared/tools/bench_push.py does.

usage: python bench/bench_lambda.py [--seconds 10] [--connections 8] [--s3-mb 50]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = Path(os.environ.get("BENCH_TOOLS", "/work/shared/tools"))
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


def cpu_seconds(pid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(x) for x in out]
    except OSError:
        pass
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / tick
        except OSError:
            pass
    return total


def peak_rss_mb(pid: int) -> int:
    for ln in open(f"/proc/{pid}/status"):
        if ln.startswith("VmHWM:"):
            return int(ln.split()[1]) // 1024
    return 0


def sink_stats(port: int) -> dict:
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats").read())


def sink_reset(port: int) -> None:
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/reset", data=b"", method="POST")).read()


def wait_entries(port: int, n: int, timeout: float = 300) -> dict:
    end = time.time() + timeout
    while True:
        st = sink_stats(port)
        if st["entries"] >= n or time.time() > end:
            return st
        time.sleep(0.05)


def post(url: str, body: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def cloudwatch_event(n: int) -> bytes:
    rnd = random.Random(1)
    now = int(time.time() * 1000)
    words = "GET POST /api/v1/orders /healthz user=alice user=bob status=200 status=500 latency_ms=12 msg=ok".split()
    payload = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/lambda/bench",
               "logStream": "2026/11/21/[$LATEST]abcdef", "subscriptionFilters": ["bench"],
               "logEvents": [{"id": str(i), "timestamp": now + i,
                              "message": f"START {rnd.randrange(1 << 32):08x} INFO " + " ".join(rnd.choice(words) for _ in range(10))}
                             for i in range(n)]}
    data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
    return json.dumps({"awslogs": {"data": data}}).encode()


def alb_log(mb: int) -> tuple[bytes, int, int]:
    """A gzip'd ALB access log of about `mb` MB: (gzip bytes, lines, uncompressed size)."""
    rnd = random.Random(2)
    base = int(time.time()) - 3600
    lines = []
    size = 0
    i = 0
    while size < mb << 20:
        t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + i // 100)) + f".{i % 1000000:06d}Z"
        ln = (f'https {t} app/bench-lb/50dc6c495c0c9188 192.168.131.{i % 250}:2817 10.0.0.1:80 0.000 0.001 0.000 '
              f'200 200 34 366 "GET https://www.example.com:443/item/{rnd.randrange(10**6)} HTTP/1.1" "curl/7.46.0" '
              f'ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/'
              f'my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 {t} "forward" "-" '
              f'"-" "10.0.0.1:80" "200" "-" "-"\n')
        lines.append(ln)
        size += len(ln)
        i += 1
    raw = "".join(lines).encode()
    return gzip.compress(raw, 6), i, len(raw)


CONFIG = """server: {{http_listen_address: 127.0.0.1, http_listen_port: {mport}, log_level: warn}}
clients:
  - url: http://127.0.0.1:{sport}/loki/api/v1/push
    batchwait: 1s
    batchsize: 1048576
scrape_configs:
  - job_name: lambda
    aws_lambda:
      server: {{http_listen_address: 127.0.0.1, http_listen_port: {lport}}}
      labels: {{job: lambda}}
      s3: {{endpoint_url: "{s3}", force_path_style: true, region: us-east-1}}
"""


def bench_cloudwatch(url: str, sport: int, pid: int, seconds: int, connections: int) -> dict:
    body = cloudwatch_event(1000)
    status, text = post(url, body)
    assert status == 200, text
    time.sleep(1.5)
    sink_reset(sport)
    stop = time.time() + seconds
    counts = [0] * connections
    errors = [0] * connections

    def worker(k: int) -> None:
        while time.time() < stop:
            s, _ = post(url, body)
            if s == 200:
                counts[k] += 1
            else:
                errors[k] += 1

    cpu0, t0 = cpu_seconds(pid), time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = sum(counts) * 1000
    st = wait_entries(sport, expected, 60)
    t1 = time.time()
    cpu = cpu_seconds(pid) - cpu0
    got = st["entries"]
    return {"events_posted": sum(counts), "errors": sum(errors), "entries": got, "seconds": round(t1 - t0, 2),
            "entries_per_s": round(got / (t1 - t0)), "relay_cpu_s": round(cpu, 2),
            "relay_cpu_us_per_entry": round(cpu / max(got, 1) * 1e6, 2), "event_bytes": len(body)}


def bench_s3(url: str, sport: int, pid: int, s3_url: str, mb: int) -> dict:
    import boto3

    data, n, raw = alb_log(mb)
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="bench",
                      aws_secret_access_key="bench")
    s3.create_bucket(Bucket="logs")
    key = ("AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/21/123456789012_elasticloadbalancing_"
           "us-east-1_app.bench-lb.50dc6c495c0c9188_20261121T0000Z_10.0.0.1_abcdefgh.log.gz")
    s3.put_object(Bucket="logs", Key=key, Body=data)
    event = json.dumps({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                                     "eventName": "ObjectCreated:Put",
                                     "s3": {"bucket": {"name": "logs"}, "object": {"key": key, "size": len(data)}}}]})
    sink_reset(sport)
    cpu0, t0 = cpu_seconds(pid), time.time()
    status, text = post(url, event.encode())
    t_answer = time.time()
    assert status == 200, text
    st = wait_entries(sport, n, 300)
    t1 = time.time()
    cpu = cpu_seconds(pid) - cpu0
    got = st["entries"]
    return {"object_gzip_mb": round(len(data) / 2**20, 1), "object_mb": round(raw / 2**20, 1), "lines": n,
            "entries": got, "answer_s": round(t_answer - t0, 2), "seconds": round(t1 - t0, 2),
            "entries_per_s": round(got / (t1 - t0)), "mb_per_s": round(raw / 2**20 / (t1 - t0), 1),
            "relay_cpu_s": round(cpu, 2), "relay_cpu_us_per_entry": round(cpu / max(got, 1) * 1e6, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--s3-mb", type=int, default=50)
    a = ap.parse_args()
    from moto.server import ThreadedMotoServer

    tmp = tempfile.mkdtemp(prefix="bench_lambda")
    sport, mport, lport, s3port = free_port(), free_port(), free_port(), free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=s3port, verbose=False)
    moto.start()
    s3_url = f"http://127.0.0.1:{s3port}"
    sink = subprocess.Popen([PY, str(TOOLS / "sink.py"), "--port", str(sport)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    cfg = Path(tmp) / "relay.yaml"
    cfg.write_text(CONFIG.format(mport=mport, sport=sport, lport=lport, s3=s3_url))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_EC2_METADATA_DISABLED": "true"}
    relay = subprocess.Popen([PY, "-m", "relay", f"-config.file={cfg}"], cwd=ROOT, env=env,
                             stdout=open(Path(tmp) / "relay.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{sport}/stats")
        wait_http(f"http://127.0.0.1:{mport}/ready")
        url = f"http://127.0.0.1:{lport}/awslambda/api/v1/push"
        out = {"cloudwatch_1000_events": bench_cloudwatch(url, sport, relay.pid, a.seconds, a.connections),
               f"s3_alb_{a.s3_mb}mb_gzip": bench_s3(url, sport, relay.pid, s3_url, a.s3_mb),
               "relay_peak_rss_mb": peak_rss_mb(relay.pid)}
        print(json.dumps(out, indent=2))
    finally:
        os.killpg(relay.pid, signal.SIGTERM)
        try:
            relay.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(relay.pid, signal.SIGKILL)
        sink.terminate()
        sink.wait()
        moto.stop()


if __name__ == "__main__":
    main()
