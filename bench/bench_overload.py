#!/usr/bin/env python3
"""The relay under sustained overload: it must shed with 429, keep memory bounded, lose no 2xx.

Loki is the test receiver (tests/loki_receiver.py) slowed down with a per-push delay, so
the relay can deliver only so much per second. The benchmark

1. calibrates: pushes as fast as it can for --calibrate seconds and measures what the
   receiver gets per second once the relay is saturated (the sustainable rate);
2. offers --factor (2) times that rate for --seconds (60), every line unique, and
   records which requests were answered 2xx and which 429;
3. stops the load, lets the relay drain, and checks that every line of every 2xx
   request reached the receiver;
4. reports the relay's peak RSS (VmHWM) against limits_config.max_buffered_bytes.

usage: python bench/bench_overload.py [--seconds 60] [--factor 2] [--limit 64MiB] [--wal]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests package: the Loki stand-in
from tests.conftest import free_port  # noqa: E402
from tests.loki_receiver import Receiver, encode_push  # noqa: E402

LINES = 50
PAD = "x" * 400


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Load:
    def __init__(self, url: str) -> None:
        self.url = url
        self.seq = 0
        self.acked: list[int] = []
        self.status: dict[int, int] = {}
        self.sent_lines = 0

    def body(self) -> tuple[int, bytes]:
        n = self.seq
        self.seq += 1
        now = time.time_ns()
        return n, encode_push([('{job="overload"}', [(now + i, f"r{n} l{i} {PAD}") for i in range(LINES)])])

    async def one(self, http: httpx.AsyncClient) -> None:
        n, body = self.body()
        try:
            r = await http.post(self.url, content=body, headers={"content-type": "application/x-protobuf"})
            code = r.status_code
        except httpx.HTTPError:
            code = 0
        self.status[code] = self.status.get(code, 0) + 1
        self.sent_lines += LINES
        if 200 <= code < 300:
            self.acked.append(n)

    async def run(self, seconds: float, rate: float | None, concurrency: int = 16) -> None:
        """`rate` requests/s (None = as fast as the relay answers)."""
        end = time.monotonic() + seconds
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as http:
            if rate is None:
                async def worker() -> None:
                    while time.monotonic() < end:
                        await self.one(http)
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                return
            sem = asyncio.Semaphore(concurrency * 4)
            tasks = set()
            start = time.monotonic()
            i = 0
            while time.monotonic() < end:
                due = start + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await sem.acquire()
                t = asyncio.create_task(self.one(http))
                t.add_done_callback(lambda _t: sem.release())
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                i += 1
            await asyncio.gather(*tasks)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--calibrate", type=float, default=15)
    ap.add_argument("--factor", type=float, default=2.0)
    ap.add_argument("--limit", default="64MiB", help="limits_config.max_buffered_bytes")
    ap.add_argument("--wait", default="2s", help="limits_config.backpressure_wait (0s: refuse at once)")
    ap.add_argument("--delay", type=float, default=0.05, help="receiver delay per push (throttles Loki)")
    ap.add_argument("--batchsize", default="256KiB")
    ap.add_argument("--wal", action="store_true")
    a = ap.parse_args()

    rx = Receiver.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench_overload_"))
    port, sport = free_port(), free_port()
    cfg = {
        "server": {"http_listen_address": "127.0.0.1", "http_listen_port": sport, "log_level": "warn"},
        "clients": [{"url": rx.url, "batchsize": a.batchsize, "batchwait": "100ms",
                     "backoff_config": {"min_period": "100ms", "max_period": "1s", "max_retries": 100}}],
        "scrape_configs": [{"job_name": "push", "loki_push_api": {
            "server": {"http_listen_address": "127.0.0.1", "http_listen_port": port}}}],
        "limits_config": {"max_buffered_bytes": a.limit, "max_buffered_bytes_per_tenant": a.limit,
                          "backpressure_wait": a.wait},
    }
    if a.wal:
        cfg["wal"] = {"enabled": True, "dir": str(tmp / "wal"), "max_size": "1GiB"}
    (tmp / "relay.yaml").write_text(yaml.safe_dump(cfg))
    relay = subprocess.Popen([sys.executable, "-m", "relay", f"-config.file={tmp / 'relay.yaml'}"], cwd=ROOT,
                             stderr=open(tmp / "relay.log", "wb"))
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{sport}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        base_rss = rss_kib(relay.pid)
        rx.delay(a.delay)
        url = f"http://127.0.0.1:{port}/loki/api/v1/push"

        # 1. calibrate: saturate, then measure the delivery rate in the second half.
        cal = Load(url)
        cal_task_end = time.monotonic() + a.calibrate
        half = a.calibrate / 2

        async def calibrate() -> float:
            task = asyncio.create_task(cal.run(a.calibrate, None, concurrency=8))
            await asyncio.sleep(half)
            e0, t0 = rx.stats()["entries"], time.monotonic()
            await asyncio.sleep(max(0.0, cal_task_end - time.monotonic()))
            e1, t1 = rx.stats()["entries"], time.monotonic()
            await task
            return (e1 - e0) / (t1 - t0)

        sustainable = asyncio.run(calibrate())
        # drain the calibration backlog before the real run
        want = len(cal.acked) * LINES
        deadline = time.monotonic() + 120
        while rx.stats()["entries"] < want and time.monotonic() < deadline:
            time.sleep(0.2)
        rx.reset()
        rx.delay(a.delay)

        # 2. overload
        offered = sustainable * a.factor
        load = Load(url)
        peak = [0]
        stop = [False]

        async def sample() -> None:
            while not stop[0]:
                peak[0] = max(peak[0], rss_kib(relay.pid))
                await asyncio.sleep(0.25)

        async def overload() -> None:
            s = asyncio.create_task(sample())
            await load.run(a.seconds, offered / LINES, concurrency=32)
            stop[0] = True
            await s

        t0 = time.monotonic()
        asyncio.run(overload())
        elapsed = time.monotonic() - t0

        # 3. drain and verify
        acked_lines = len(load.acked) * LINES
        deadline = time.monotonic() + 300
        while rx.stats()["entries"] < acked_lines and time.monotonic() < deadline:
            time.sleep(0.5)
        drained = time.monotonic() - t0 - elapsed
        got = rx.entries()
        received = {}
        for e in got:
            n = int(e["line"].split(" ", 1)[0][1:])
            received[n] = received.get(n, 0) + 1
        missing = [n for n in load.acked if received.get(n, 0) < LINES]
        hwm = rss_kib(relay.pid, "VmHWM")

        print(f"sustainable rate (calibrated): {sustainable:,.0f} lines/s  (receiver delay {a.delay * 1000:.0f} ms/push, "
              f"batchsize {a.batchsize}, line {len(PAD) + 12} bytes)")
        print(f"offered: {offered:,.0f} lines/s ({a.factor}x) for {elapsed:.1f} s: {load.sent_lines:,} lines in "
              f"{sum(load.status.values()):,} requests")
        print(f"answers: {dict(sorted(load.status.items()))}")
        print(f"acknowledged (2xx): {acked_lines:,} lines ({acked_lines / elapsed:,.0f}/s); "
              f"refused 429: {load.status.get(429, 0) * LINES:,} lines")
        print(f"delivered: {len(got):,} entries; acknowledged requests missing at the receiver: {len(missing)}; "
              f"drain after load: {drained:.1f} s")
        print(f"relay RSS: start {base_rss / 1024:.0f} MiB, peak during overload {peak[0] / 1024:.0f} MiB, "
              f"VmHWM {hwm / 1024:.0f} MiB, max_buffered_bytes {a.limit}, backpressure_wait {a.wait}{' (WAL on)' if a.wal else ''}")
        return 1 if missing else 0
    finally:
        relay.terminate()
        try:
            relay.wait(60)
        except subprocess.TimeoutExpired:
            relay.kill()
        rx.stop()


if __name__ == "__main__":
    sys.exit(main())
