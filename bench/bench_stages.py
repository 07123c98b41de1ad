"""In-process benchmark of a job with pipeline stages: decode, stages, regroup, encode.

Runs the Processor on one decoded push of JSON application logs (10 streams x 100 lines by
default), the way the push route does, and prints µs per line for the whole path and for each
stage (its share of the full path, timed in place).

    python bench/bench_stages.py [--stages FILE] [--streams 10] [--lines 100] [--repeat 200] [--profile]

Without --stages it uses a typical pipeline for JSON logs: json, labels, timestamp, drop,
structured_metadata, output. CPU time of this process: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import snappy
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relay.config import parse_config
from relay.pipeline.process import Processor
from relay.proto import PushRequest
from relay.sources.push import PushDecoder

PIPELINE = """
- json:
    expressions: {level: level, ts: time, msg: msg, request_id: request_id}
- labels: {level: }
- timestamp: {source: ts, format: RFC3339Nano}
- drop: {source: level, value: trace}
- structured_metadata: {request_id: }
- output: {source: msg}
"""

WORDS = ["GET", "POST", "/api/v1/items", "/healthz", "user=ann", "user=ben", "status=200", "status=503", "took=7ms", "took=350ms", "zone=a", "msg=fine"]
LEVELS = ["info"] * 6 + ["warn"] * 2 + ["error", "debug"]


def push_body(streams: int, lines: int) -> bytes:
    rnd = random.Random(7)
    now = time.time_ns()
    req = PushRequest()
    for s in range(streams):
        st = req.streams.add(labels=f'{{__aws_log_type="cloudwatch", job="bench", group="/svc/{s}"}}')
        for i in range(lines):
            t = now + s * lines + i
            sec, ns = divmod(t, 1_000_000_000)
            line = json.dumps({
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{ns:09d}Z",
                "level": rnd.choice(LEVELS), "msg": " ".join(rnd.choice(WORDS) for _ in range(6)),
                "request_id": f"{rnd.randrange(1 << 32):08x}", "user": rnd.choice(["ann", "ben"]),
                "latency_ms": rnd.randrange(1, 900)}, separators=(",", ":"))
            e = st.entries.add(line=line)
            e.timestamp.seconds, e.timestamp.nanos = sec, ns
    return snappy.compress(req.SerializeToString())


def processor(stages: list) -> Processor:
    doc = {"scrape_configs": [{
        "job_name": "bench",
        "loki_push_api": {"server": {"http_listen_port": 0}, "labels": {"promtail": "relay"},
                          "use_incoming_timestamp": True},
        "relabel_configs": [{"source_labels": ["group"], "target_label": "log_group"}],
        "pipeline_stages": stages,
    }]}
    cfg = parse_config(doc)
    return Processor(cfg.jobs[0], cfg.limits)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stages", help="YAML file with a pipeline_stages list")
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--lines", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the full path")
    a = ap.parse_args()
    stages = yaml.safe_load(Path(a.stages).read_text() if a.stages else PIPELINE)
    body = push_body(a.streams, a.lines)
    n = a.streams * a.lines
    decoder = PushDecoder()
    proc = processor(stages)

    def once() -> None:
        decoded = decoder.protobuf(body, 1 << 30)
        proc.process(decoded.streams, "", time.time_ns())

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
    print(f"full path (decode + stages + encode): {full:.2f} µs/line ({1e6 / full:,.0f} lines/s on one core)")
    print(f"  decode only: {decode:.2f} µs/line")

    # Each stage's share of the full path: its run() timed in place, on the entries it really gets.
    assert proc.pipeline is not None
    spent = {id(stage): 0.0 for stage in proc.pipeline.stages}
    for stage in proc.pipeline.stages:
        stage.run = _timed(stage.run, spent, id(stage))  # type: ignore[method-assign]
    t0 = time.process_time()
    for _ in range(a.repeat):
        once()
    whole = time.process_time() - t0
    for stage in proc.pipeline.stages:
        del stage.run
        print(f"  {stage.kind:<20} {spent[id(stage)] / (a.repeat * n) * 1e6:.2f} µs/line")
    in_stages = sum(spent.values())
    print(f"  stages together:     {in_stages / (a.repeat * n) * 1e6:.2f} µs/line")
    print(f"  the rest (decode, entries, regroup, encode): {(whole - in_stages) / (a.repeat * n) * 1e6:.2f} µs/line")

    if a.profile:
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        for _ in range(a.repeat // 4):
            once()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
    return 0


def _timed(run: Callable[[list], list], spent: dict[int, float], key: int) -> Callable[[list], list]:
    def timed(entries: list) -> list:
        t0 = time.process_time()
        try:
            return run(entries)
        finally:
            spent[key] += time.process_time() - t0

    return timed


if __name__ == "__main__":
    sys.exit(main())
