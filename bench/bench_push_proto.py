"""In-process benchmark of a protobuf push without stages: decode, process (time window included).

One snappy PushRequest (10 streams x 100 lines by default) of a `loki_push_api` job with
`use_incoming_timestamp: true` and default limits, decoded and processed the way the push route
does. `--full` forces the full decode (StreamAdapter entries, the time window's own parse), as a
job whose entries cannot pass through gets. CPU time of this process: run it on a quiet machine.

    python bench/bench_push_proto.py [--streams 10] [--lines 100] [--repeat 2000] [--full]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

import snappy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relay.config import parse_config
from relay.pipeline.process import Processor
from relay.proto import PushRequest
from relay.sources.push import PushDecoder

WORDS = ["GET", "POST", "/api/v1/orders", "/healthz", "user=ann", "user=ben", "status=200", "status=500", "took=12ms",
         "took=480ms", "msg=ok"]


def push_body(streams: int, lines: int) -> bytes:
    rnd = random.Random(1)
    now = time.time_ns()
    req = PushRequest()
    for s in range(streams):
        st = req.streams.add(labels=f'{{__aws_log_type="cloudwatch", job="bench", group="/svc/{s}"}}')
        for i in range(lines):
            e = st.entries.add(line=" ".join(rnd.choice(WORDS) for _ in range(8)))
            e.timestamp.seconds, e.timestamp.nanos = divmod(now + s * lines + i, 1_000_000_000)
    return snappy.compress(req.SerializeToString())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--lines", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=2000)
    ap.add_argument("--full", action="store_true", help="decode every entry (the path without pass-through)")
    a = ap.parse_args()
    cfg = parse_config({"scrape_configs": [{"job_name": "bench", "loki_push_api": {
        "server": {"http_listen_port": 0}, "labels": {"promtail": "relay"}, "use_incoming_timestamp": True}}]})
    proc = Processor(cfg.jobs[0], cfg.limits)
    decoder = PushDecoder(pass_through=proc.passes_entries_through and not a.full)
    body = push_body(a.streams, a.lines)
    n = a.streams * a.lines

    def once() -> None:
        d = decoder.protobuf(body, 1 << 30)
        out = proc.process(d.streams, "", time.time_ns(), d.times)
        assert out.entries == n, out

    once()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)  # as the relay runs (relay/cli.py)
    t0 = time.process_time()
    for _ in range(a.repeat):
        once()
    full = (time.process_time() - t0) / (a.repeat * n) * 1e6
    t0 = time.process_time()
    for _ in range(a.repeat):
        decoder.protobuf(body, 1 << 30)
    decode = (time.process_time() - t0) / (a.repeat * n) * 1e6
    path = "full" if not decoder.pass_through else "pass-through"
    print(f"{path}: decode + process {full:.3f} µs/line, decode alone {decode:.3f} µs/line")
    return 0


if __name__ == "__main__":
    sys.exit(main())
