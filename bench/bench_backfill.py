#!/usr/bin/env python3
"""Benchmark `loki-relay backfill`: objects/s and lines/s for a prefix of ALB logs.

A moto server (S3 on 127.0.0.1) holds --objects gzip'd ALB access-log objects of --lines
lines each, under the usual AWSLogs/<account>/elasticloadbalancing/<region>/Y/M/D/ layout.
Loki is a counting sink in this process (snappy protobuf decoded, entries counted). The
command runs as a real process; the time is its wall time, start-up included, and the
backfill's CPU is user+sys of that process. Runs: a dry run (list, fetch, parse), then a
real run (also processed and sent).

usage: python bench/bench_backfill.py [--objects 100] [--lines 2000] [--concurrency 4]
       python bench/bench_backfill.py --objects 300 --lines 50    (small objects: pushes shared)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ACCOUNT, REGION = "111122223333", "eu-west-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink(ThreadingHTTPServer):
    daemon_threads = True
    entries = 0
    requests = 0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        import snappy

        from relay.proto import PushRequest

        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        req = PushRequest()
        req.ParseFromString(snappy.uncompress(body))
        n = sum(len(s.entries) for s in req.streams)
        srv: Sink = self.server  # type: ignore[assignment]
        srv.entries += n
        srv.requests += 1
        self.send_response(204)
        self.end_headers()


def alb_object(t: dt.datetime, i: int, lines: int) -> tuple[str, bytes]:
    key = (f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/{t:%Y/%m/%d}/{ACCOUNT}_elasticloadbalancing_{REGION}_"
           f"app.bench-alb.50dc6c495c0c9188_{t:%Y%m%dT%H%M}Z_10.0.0.1_{i:05d}.log.gz")
    rows = []
    for j in range(lines):
        ts = (t + dt.timedelta(milliseconds=j * 150)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
        rows.append(f'https {ts} app/bench-alb/50dc6c495c0c9188 192.0.2.{j % 250}:{40000 + j % 20000} 10.0.1.{j % 200}:80 '
                    f'0.000 0.00{j % 9} 0.000 200 200 {300 + j % 700} {2000 + j % 9000} "GET https://shop.example.test:443/'
                    f'item/{i}/{j}?ref=bench HTTP/1.1" "Mozilla/5.0 (X11; Linux x86_64)" ECDHE-RSA-AES128-GCM-SHA256 '
                    f'TLSv1.2 arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/web/73e2d6bc24d8a067 '
                    f'"Root=1-58337262-{i:08x}{j:08x}" "shop.example.test" "arn:aws:acm:{REGION}:{ACCOUNT}:certificate/x" '
                    f'0 {ts} "forward" "-" "-" "10.0.1.{j % 200}:80" "200" "-" "-"')
    return key, gzip.compress(("\n".join(rows) + "\n").encode(), 6)


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"backfill failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=100)
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()

    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    url = f"http://127.0.0.1:{port}"
    s3 = boto3.client("s3", endpoint_url=url, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    s3.create_bucket(Bucket="bench", CreateBucketConfiguration={"LocationConstraint": REGION})
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(days=1)
    stored = 0
    for i in range(args.objects):
        key, body = alb_object(start + dt.timedelta(minutes=5 * (i // 10)), i, args.lines)
        s3.put_object(Bucket="bench", Key=key, Body=body)
        stored += len(body)
    sink = Sink(("127.0.0.1", 0), Handler)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{sink.server_address[1]}/loki/api/v1/push"
    tmp = tempfile.mkdtemp(prefix="bench_backfill_")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION,
           "AWS_ENDPOINT_URL_S3": url, "XDG_CACHE_HOME": tmp}
    total = args.objects * args.lines
    print(f"{args.objects} ALB objects x {args.lines} lines = {total} lines, {stored / 1e6:.1f} MB stored (gzip), "
          f"concurrency {args.concurrency}")
    base = [sys.executable, "-m", "relay", "backfill", "s3://bench/AWSLogs/", f"-client.url={sink_url}",
            f"--concurrency={args.concurrency}", "--since=48h"]
    for name, extra in (("dry run (list+fetch+parse)", ["--dry-run"]), ("backfill (…+process+send)", [])):
        wall, cpu, out = run(base + extra, env)
        print(f"{name:28s} {wall:6.2f} s wall  {args.objects / wall:7.1f} objects/s  {total / wall:9.0f} lines/s  "
              f"CPU {cpu:5.2f} s ({cpu / total * 1e6:.2f} CPU-µs/line, moto's not included)")
    if sink.entries != total:
        sys.exit(f"sink counted {sink.entries} entries, expected {total}")
    print(f"sink: {sink.entries} entries in {sink.requests} pushes")
    sink.shutdown()
    moto.stop()


if __name__ == "__main__":
    main()
