#!/usr/bin/env python3
"""RSS against limits_config.max_buffered_bytes with Loki down, for tiny and for large streams.

Starts a relay whose only client points at a port nobody listens on (so nothing is ever
delivered and everything accepted stays held), pushes until the relay answers 429 for a
while, and reports the relay's RSS growth over its idle RSS next to the limit and the
held-bytes gauge. Shapes:

  tiny   each request: 1000 streams of 1 entry of ~20 bytes (a chunk per entry), 1000 label sets
  unique the same, but every stream's label set is new (the label caches fill as well)
  large  each request: 1 stream of 1000 entries of 200 bytes

usage: python bench/bench_memory.py [--limit 16MiB] [--shape tiny|unique|large|all]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests package: the Loki stand-in
from tests.loki_receiver import encode_push  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def metric(port: int, name: str) -> float:
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def body(shape: str, seq: int) -> bytes:
    now = time.time_ns()
    if shape == "tiny":  # 1000 label sets, the same in every request
        return encode_push([(f'{{job="mem", s="{i}"}}', [(now, f"tiny line {seq}-{i}")]) for i in range(1000)])
    if shape == "unique":  # every stream a label set never seen before (label caches fill up too)
        return encode_push([(f'{{job="mem", s="{seq}-{i}"}}', [(now, f"tiny line {seq}-{i}")]) for i in range(1000)])
    return encode_push([('{job="mem"}', [(now + i, f"{seq:08d}-{i:06d} " + "x" * 184) for i in range(1000)])])


def run(shape: str, limit: str) -> None:
    push_port, server_port, dead = free_port(), free_port(), free_port()
    cfg = {
        "server": {"http_listen_address": "127.0.0.1", "http_listen_port": server_port},
        "clients": [{"url": f"http://127.0.0.1:{dead}/loki/api/v1/push",
                     "backoff_config": {"min_period": "1s", "max_period": "5s", "max_retries": 1000}}],
        "scrape_configs": [{"job_name": "mem", "loki_push_api": {
            "server": {"http_listen_address": "127.0.0.1", "http_listen_port": push_port}}}],
        "limits_config": {"max_buffered_bytes": limit, "max_buffered_bytes_per_tenant": limit,
                          "backpressure_wait": "0s"},
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "relay.yaml"
        path.write_text(yaml.safe_dump(cfg))
        proc = subprocess.Popen([sys.executable, "-m", "relay", f"-config.file={path}"], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"http://127.0.0.1:{server_port}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            url = f"http://127.0.0.1:{push_port}/loki/api/v1/push"
            with httpx.Client(timeout=30) as http:
                http.post(url, content=body(shape, 0), headers={"Content-Type": "application/x-protobuf"})
                time.sleep(1)
                idle = rss_kib(proc.pid)
                accepted = refused = seq = 0
                while refused < 50:  # keep pushing well past the first refusal
                    seq += 1
                    r = http.post(url, content=body(shape, seq), headers={"Content-Type": "application/x-protobuf"})
                    accepted += r.status_code == 204
                    refused += r.status_code == 429
            time.sleep(1)
            grown = (rss_kib(proc.pid) - idle) / 1024
            held = metric(server_port, "loki_relay_held_bytes") / (1 << 20)
            print(f"{shape:5}  limit {limit:>6}  accepted {accepted:5} requests ({accepted * 1000} entries)  "
                  f"held gauge {held:6.1f} MiB  RSS growth {grown:6.1f} MiB")
        finally:
            proc.kill()
            proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", default="16MiB")
    ap.add_argument("--shape", default="all", choices=["tiny", "unique", "large", "all"])
    a = ap.parse_args()
    for shape in (["tiny", "unique", "large"] if a.shape == "all" else [a.shape]):
        run(shape, a.limit)


if __name__ == "__main__":
    main()
