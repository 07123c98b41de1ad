"""Issue 9, item 6: entries Loki would refuse for their time are refused at intake.

limits_config reject_old_samples_max_age (168h) and creation_grace_period (10m), 0 = off, checked on
the final times in both processing paths (without stages, and with them), then over HTTP.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import httpx
import orjson
import pytest

from relay.config import ConfigError, JobConfig, LimitsConfig, ServerConfig, parse_config
from relay.ingest import DropLog
from relay.model import Chunk, Stream, new_stream
from relay.pipeline import Outcome, Processor
from relay.pipeline.limits import go_rfc3339
from relay.proto import StreamAdapter
from relay.sources.push import PushDecoder
from tests.conftest import free_port, push_config
from tests.loki_receiver import Receiver, encode_push

S = 1_000_000_000
HOUR = 3600 * S
DAY = 24 * HOUR
NOW = 1_780_000_000 * S + 123_456_789  # 2026-05-28T20:26:40.123456789Z


def job(incoming: bool = True, stages: list[Any] | None = None) -> JobConfig:
    return JobConfig(name="j", kind="loki_push_api", listen=ServerConfig(), use_incoming_timestamp=incoming,
                     pipeline_stages=stages or [])


def delivered(out: Outcome) -> dict[str, list[tuple[int, str]]]:
    """label text -> (time, line) of every entry in the outcome's chunks, decoded independently."""
    got: dict[str, list[tuple[int, str]]] = {}
    for chunks in out.chunks.values():
        for c in chunks:
            msg = StreamAdapter.FromString(c.data)
            assert c.count == len(msg.entries) and c.size == len(c.data)
            got.setdefault(c.labels, []).extend(
                (e.timestamp.seconds * S + e.timestamp.nanos, e.line) for e in msg.entries)
    assert out.entries == sum(len(v) for v in got.values())
    assert out.size == sum(c.size for cs in out.chunks.values() for c in cs)
    return got


# ---- without stages ---------------------------------------------------------------------------


def test_an_old_entry_is_dropped_with_lokis_message_and_the_rest_is_kept() -> None:
    p = Processor(job(), LimitsConfig())
    old = NOW - 8 * DAY
    out = p.process([new_stream({"app": "a"}, [(NOW, "ok1"), (old, "old"), (NOW + 1, "ok2")]),
                     new_stream({"app": "b"}, [(NOW - DAY, "fine")])], "", NOW)
    assert delivered(out) == {'{app="a"}': [(NOW, "ok1"), (NOW + 1, "ok2")], '{app="b"}': [(NOW - DAY, "fine")]}
    assert dict(out.dropped) == {"too_old": 1}
    assert out.dropped_bytes["too_old"] > len("old")
    assert out.errors == ["entry for stream '{app=\"a\"}' has timestamp too old: 2026-05-20T20:26:40Z, "
                          "oldest acceptable timestamp is: 2026-05-21T20:26:40Z"]


def test_a_future_entry_is_dropped_and_a_whole_stream_can_go() -> None:
    p = Processor(job(), LimitsConfig())
    out = p.process([new_stream({"app": "a"}, [(NOW + HOUR, "ahead"), (NOW + 2 * HOUR, "further")]),
                     new_stream({"app": "b"}, [(NOW + 9 * 60 * S, "within grace")])], "t1", NOW)
    assert delivered(out) == {'{app="b"}': [(NOW + 9 * 60 * S, "within grace")]}
    assert list(out.chunks) == ["t1"]
    assert dict(out.dropped) == {"too_far_in_future": 2}
    assert out.errors == ["entry for stream '{app=\"a\"}' has timestamp too new: 2026-05-28T21:26:40Z (2 entries)"]


def test_the_bounds_are_exact_to_the_nanosecond() -> None:
    p = Processor(job(), LimitsConfig())
    oldest, newest = NOW - 168 * HOUR, NOW + 10 * 60 * S
    out = p.process([new_stream({"app": "edge"}, [(oldest, "oldest ok"), (oldest - 1, "1ns too old"),
                                                  (newest, "newest ok"), (newest + 1, "1ns too new")])], "", NOW)
    assert delivered(out) == {'{app="edge"}': [(oldest, "oldest ok"), (newest, "newest ok")]}
    assert dict(out.dropped) == {"too_old": 1, "too_far_in_future": 1}


def test_an_entry_at_second_zero_or_without_a_time_is_too_old() -> None:
    # Seconds of 0 are not encoded in protobuf: the fast check must notice them missing.
    msg = StreamAdapter()
    msg.entries.add(line="no time at all")
    e = msg.entries.add(line="half a second after the epoch")
    e.timestamp.nanos = 500_000_000
    e = msg.entries.add(line="now")
    e.timestamp.seconds, e.timestamp.nanos = divmod(NOW, S)
    out = Processor(job(), LimitsConfig()).process([Stream({"app": "z"}, msg)], "", NOW)
    assert delivered(out) == {'{app="z"}': [(NOW, "now")]}
    assert dict(out.dropped) == {"too_old": 2}
    assert "has timestamp too old: 1970-01-01T00:00:00Z" in out.errors[0]


def test_receive_time_stamping_needs_no_check_and_old_incoming_times_are_replaced() -> None:
    p = Processor(job(incoming=False), LimitsConfig())
    out = p.process([new_stream({"app": "a"}, [(0, "1970"), (NOW - 30 * DAY, "a month old")])], "", NOW)
    assert delivered(out) == {'{app="a"}': [(NOW, "1970"), (NOW + 1, "a month old")]}
    assert not out.dropped and not out.errors


@pytest.mark.parametrize("limits, kept", [
    (LimitsConfig(reject_old_samples_max_age=0), {"old"}),
    (LimitsConfig(reject_old_samples=False), {"old"}),
    (LimitsConfig(creation_grace_period=0), {"new"}),
    (LimitsConfig(reject_old_samples_max_age=0, creation_grace_period=0), {"old", "new"}),
    (LimitsConfig(reject_old_samples_max_age=30 * 86400.0, creation_grace_period=3 * 3600.0), {"old", "new"}),
    (LimitsConfig(reject_old_samples_max_age=3600.0), set()),
])
def test_limits_config_sets_the_window_and_zero_turns_a_check_off(limits: LimitsConfig, kept: set[str]) -> None:
    out = Processor(job(), limits).process(
        [new_stream({"app": "a"}, [(NOW - 20 * DAY, "old"), (NOW + 2 * HOUR, "new"), (NOW, "now")])], "", NOW)
    assert {line for _, line in delivered(out)['{app="a"}']} == kept | {"now"}


def test_the_fast_check_agrees_with_an_entry_by_entry_reference() -> None:
    rng = random.Random(9)
    limits = LimitsConfig()
    oldest, newest = NOW - 168 * HOUR, NOW + 10 * 60 * S
    p = Processor(job(), limits)
    for _ in range(200):
        streams, expected, expected_drops = [], {}, {"too_old": 0, "too_far_in_future": 0}
        for s in range(rng.randint(1, 5)):
            entries = []
            for i in range(rng.randint(1, 6)):
                pick = rng.random()
                if pick < 0.8:
                    t = rng.randint(oldest, newest)
                else:  # around the bounds, at the epoch, far out
                    t = rng.choice([oldest - 1, oldest, oldest + 1, newest - 1, newest, newest + 1, 0, 5,
                                    oldest - S, newest + S, NOW + 50 * 365 * DAY])
                entries.append((t, f"{s}-{i}"))
                if t < oldest:
                    expected_drops["too_old"] += 1
                elif t > newest:
                    expected_drops["too_far_in_future"] += 1
                else:
                    expected.setdefault(f'{{app="{s}"}}', []).append((t, f"{s}-{i}"))
            streams.append(new_stream({"app": str(s)}, entries))
        out = p.process(streams, "", NOW)
        assert delivered(out) == expected
        assert {k: v for k, v in out.dropped.items() if v} == {k: v for k, v in expected_drops.items() if v}


def test_json_bounds_from_the_decoder_agree_with_an_entry_by_entry_reference() -> None:
    # A JSON push tells the processor its earliest and latest time; inside the window the entries are
    # not read again. Random requests through the decoder must keep exactly what the reference keeps.
    rng = random.Random(10)
    oldest, newest = NOW - 168 * HOUR, NOW + 10 * 60 * S
    p = Processor(job(), LimitsConfig())
    decoder = PushDecoder()
    for _ in range(200):
        doc, expected = [], {}
        for s in range(rng.randint(1, 4)):
            values = []
            for i in range(rng.randint(0, 5)):
                t = rng.randint(oldest, newest) if rng.random() < 0.85 else rng.choice(
                    [oldest - 1, oldest, newest, newest + 1, 0, NOW + 50 * 365 * DAY])
                values.append([str(t), f"{s}-{i}"])
                if oldest <= t <= newest:
                    expected.setdefault(f'{{app="{s}"}}', []).append((t, f"{s}-{i}"))
            doc.append({"stream": {"app": str(s)}, "values": values})
        decoded = decoder.json(orjson.dumps({"streams": doc}))
        times = [int(v[0]) for st in doc for v in st["values"]]
        assert decoded.times == ((min(times), max(times)) if times else None)
        assert delivered(p.process(decoded.streams, "", NOW, decoded.times)) == expected


def test_known_bounds_are_trusted_inside_the_window_and_checked_outside() -> None:
    p = Processor(job(), LimitsConfig())
    old = NOW - 8 * DAY
    streams = [new_stream({"app": "a"}, [(NOW, "now"), (old, "old")])]
    # Bounds that say "inside" are believed (the entries are not read again): the source must be right.
    assert delivered(p.process(streams, "", NOW, (NOW, NOW))) == {'{app="a"}': [(NOW, "now"), (old, "old")]}
    streams = [new_stream({"app": "a"}, [(NOW, "now"), (old, "old")])]
    out = p.process(streams, "", NOW, (old, NOW))
    assert delivered(out) == {'{app="a"}': [(NOW, "now")]} and dict(out.dropped) == {"too_old": 1}


def test_rfc3339_as_go_prints_it() -> None:
    assert go_rfc3339(0) == "1970-01-01T00:00:00Z"
    assert go_rfc3339(NOW) == "2026-05-28T20:26:40Z"
    assert go_rfc3339(-1) == "1969-12-31T23:59:59Z"
    assert go_rfc3339(10**30)  # beyond what a date can show: still an answer, never an exception


# ---- with stages ------------------------------------------------------------------------------


def test_a_timestamp_stage_that_produces_an_old_time_is_refused() -> None:
    stages = [{"regex": {"expression": r"^(?P<ts>\S+) (?P<msg>.*)$"}},
              {"timestamp": {"source": "ts", "format": "RFC3339"}}]
    p = Processor(job(incoming=False, stages=stages), LimitsConfig())
    out = p.process([new_stream({"app": "st"}, [(0, "2020-01-01T00:00:00Z an old line"),
                                                (0, "2026-05-28T20:00:00Z a recent line"),
                                                (0, "2026-05-28T22:00:00Z a line from the future")])], "", NOW)
    recent = 1_779_998_400 * S
    assert delivered(out) == {'{app="st"}': [(recent, "2026-05-28T20:00:00Z a recent line")]}
    assert dict(out.dropped) == {"too_old": 1, "too_far_in_future": 1}
    assert out.errors[0] == ("entry for stream '{app=\"st\"}' has timestamp too old: 2020-01-01T00:00:00Z, "
                             "oldest acceptable timestamp is: 2026-05-21T20:26:40Z")
    assert out.errors[1] == "entry for stream '{app=\"st\"}' has timestamp too new: 2026-05-28T22:00:00Z"


def test_stages_with_incoming_times_are_checked_per_final_stream() -> None:
    stages = [{"static_labels": {"stage": "yes"}}]
    p = Processor(job(stages=stages), LimitsConfig(reject_old_samples_max_age=3600.0))
    out = p.process([new_stream({"app": "a"}, [(NOW - 2 * HOUR, "old"), (NOW, "now")]),
                     new_stream({"app": "b"}, [(NOW, "b now")])], "", NOW)
    assert delivered(out) == {'{app="a", stage="yes"}': [(NOW, "now")], '{app="b", stage="yes"}': [(NOW, "b now")]}
    assert out.dropped == {"too_old": 1}
    assert out.errors[0].startswith("entry for stream '{app=\"a\", stage=\"yes\"}' has timestamp too old")


# ---- config -----------------------------------------------------------------------------------


def test_config_defaults_and_keys() -> None:
    d = parse_config({}).limits
    assert (d.reject_old_samples, d.reject_old_samples_max_age, d.creation_grace_period) == (True, 168 * 3600.0, 600.0)
    c = parse_config({"limits_config": {"reject_old_samples": False, "reject_old_samples_max_age": "1w",
                                        "creation_grace_period": "0"}}).limits
    assert (c.reject_old_samples, c.reject_old_samples_max_age, c.creation_grace_period) == (False, 604800.0, 0.0)
    for bad in ({"reject_old_samples_max_age": -5}, {"creation_grace_period": "soon"}, {"reject_old_samples": "no"}):
        with pytest.raises(ConfigError, match="limits_config"):
            parse_config({"limits_config": bad})


# ---- the drop log -----------------------------------------------------------------------------


def test_drops_are_logged_once_per_job_and_reason_per_period_with_what_was_held_back(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = [100.0]
    dl = DropLog(every=10.0, clock=lambda: clock[0])
    with caplog.at_level(logging.INFO, logger="relay.ingest"):
        dl.drop("web", "too_old", 3, "first error of the request: entry for stream '{a=\"1\"}' ...")
        for _ in range(5):
            clock[0] += 1
            dl.drop("web", "too_old", 2)
        dl.drop("web", "relabel", 7)  # another reason: its own line
        dl.drop("api", "too_old", 1)  # another job: its own line
        clock[0] = 110.5
        dl.drop("web", "too_old", 4)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        ("WARNING", "job web: 3 entries dropped, reason too_old: first error of the request: entry for stream "
                    "'{a=\"1\"}' ..."),
        ("INFO", "job web: 7 entries dropped, reason relabel"),
        ("WARNING", "job api: 1 entries dropped, reason too_old"),
        ("WARNING", "job web: 4 entries dropped, reason too_old (and 10 more entries in 5 drops not logged "
                    "since the last such line)"),
    ]


# ---- over HTTP --------------------------------------------------------------------------------


def _post(port: int, body: bytes, ctype: str = "application/json") -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{port}/loki/api/v1/push", content=body,
                      headers={"Content-Type": ctype}, timeout=10)


def _json(*streams: tuple[dict[str, str], list[list[str]]]) -> bytes:
    return orjson.dumps({"streams": [{"stream": lab, "values": vals} for lab, vals in streams]})


def test_http_an_old_entry_among_good_ones_is_400_naming_the_stream(start_relay: Any) -> None:
    rx = Receiver.start()
    try:
        port = free_port()
        relay = start_relay(push_config(rx.url, port, use_incoming_timestamp=True))
        now = time.time_ns()
        r = _post(port, _json(({"app": "mixed"}, [[str(now), "good 1"], [str(now - 8 * DAY), "a week and a day old"],
                                                  [str(now + 1), "good 2"]]),
                              ({"app": "other"}, [[str(now), "other good"]])))
        assert r.status_code == 400, r.text
        assert "entry for stream '{app=\"mixed\"}' has timestamp too old: " in r.text
        assert "oldest acceptable timestamp is: " in r.text
        got = sorted(e["line"] for e in rx.wait_for(3))
        assert got == ["good 1", "good 2", "other good"]

        r = _post(port, encode_push([('{app="ahead"}', [(now + HOUR, "an hour ahead"), (now, "in time")])]),
                  "application/x-protobuf")
        assert r.status_code == 400 and "entry for stream '{app=\"ahead\"}' has timestamp too new: " in r.text
        assert "in time" in [e["line"] for e in rx.wait_for(4)]
        time.sleep(0.3)
        assert len(rx.entries()) == 4  # the refused entries never reach Loki
        assert relay.metric("loki_relay_dropped_entries_total", reason="too_old", job="push") == 1
        assert relay.metric("loki_relay_dropped_entries_total", reason="too_far_in_future", job="push") == 1
        log = relay.log()
        assert "job push: 1 entries dropped, reason too_old" in log
        assert "job push: 1 entries dropped, reason too_far_in_future" in log
    finally:
        rx.stop()


def test_http_zero_turns_the_checks_off(start_relay: Any) -> None:
    rx = Receiver.start(no_reject_old_samples=True, creation_grace_period="48h")  # a Loki with other limits
    try:
        port = free_port()
        cfg = push_config(rx.url, port, use_incoming_timestamp=True)
        cfg["limits_config"] = {"reject_old_samples_max_age": 0, "creation_grace_period": "0s"}
        start_relay(cfg)
        now = time.time_ns()
        r = _post(port, _json(({"app": "any"}, [[str(now - 30 * DAY), "a month old"], [str(now + DAY), "a day ahead"]])))
        assert r.status_code == 204, r.text
        assert sorted(e["line"] for e in rx.wait_for(2)) == ["a day ahead", "a month old"]
    finally:
        rx.stop()


def test_http_a_timestamp_stage_producing_an_old_time_is_refused(start_relay: Any) -> None:
    rx = Receiver.start()
    try:
        port = free_port()
        stages = [{"regex": {"expression": r"^(?P<ts>\S+) "}}, {"timestamp": {"source": "ts", "format": "RFC3339"}}]
        cfg = push_config(rx.url, port)
        cfg["scrape_configs"][0]["pipeline_stages"] = stages
        start_relay(cfg)
        recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
        r = _post(port, _json(({"app": "st"}, [[str(time.time_ns()), "2019-06-01T00:00:00Z old line"],
                                                [str(time.time_ns()), f"{recent} recent line"]])))
        assert r.status_code == 400, r.text
        assert "entry for stream '{app=\"st\"}' has timestamp too old: 2019-06-01T00:00:00Z" in r.text
        assert [e["line"] for e in rx.wait_for(1)] == [f"{recent} recent line"]
    finally:
        rx.stop()


def test_a_chunk_is_a_plain_tuple_after_a_cut() -> None:
    # Cut chunks go to the same queues as the others: same type, same fields.
    out = Processor(job(), LimitsConfig()).process(
        [new_stream({"app": "a"}, [(NOW, "keep"), (0, "drop")])], "", NOW)
    [chunk] = out.chunks[""]
    assert type(chunk) is Chunk


def test_http_firehose_answers_as_for_an_invalid_stream_and_lambda_reports_the_drop(start_relay: Any) -> None:
    """AWS routes keep their contracts: Firehose answers 400 with the reason (as for an invalid
    stream: the valid records were taken), the Lambda route answers 200 with the drop counted."""
    import base64
    import gzip
    import uuid

    rx = Receiver.start()
    try:
        fh_port, lambda_port = free_port(), free_port()
        server = {"http_listen_address": "127.0.0.1"}
        start_relay({
            "clients": [{"url": rx.url, "batchwait": "50ms"}],
            "scrape_configs": [
                {"job_name": "fh", "aws_firehose": {"server": {**server, "http_listen_port": fh_port},
                                                    "use_incoming_timestamp": True}},
                {"job_name": "lam", "aws_lambda": {"server": {**server, "http_listen_port": lambda_port},
                                                   "use_incoming_timestamp": True}},
            ],
        })
        now_ms = int(time.time() * 1000)
        old_ms = now_ms - 10 * 86_400_000

        def cw(events: list[tuple[int, str]], stream: str) -> str:
            doc = {"messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": "/aws/lambda/fn",
                   "logStream": stream, "subscriptionFilters": ["f"],
                   "logEvents": [{"id": str(i), "timestamp": t, "message": m} for i, (t, m) in enumerate(events)]}
            return base64.b64encode(gzip.compress(orjson.dumps(doc))).decode()

        rid = str(uuid.uuid4())
        body = {"requestId": rid, "timestamp": now_ms,
                "records": [{"data": cw([(old_ms, "fh old"), (now_ms, "fh new")], "s-old")},
                            {"data": cw([(now_ms, "fh other")], "s-good")}]}
        r = httpx.post(f"http://127.0.0.1:{fh_port}/awsfirehose/api/v1/push", content=orjson.dumps(body),
                       headers={"Content-Type": "application/json", "X-Amz-Firehose-Request-Id": rid}, timeout=10)
        assert r.status_code == 400, r.text
        assert r.json()["requestId"] == rid and "has timestamp too old" in r.json()["errorMessage"]
        assert sorted(e["line"] for e in rx.wait_for(2)) == ["fh new", "fh other"]

        event = {"awslogs": {"data": cw([(old_ms, "lambda old"), (now_ms, "lambda new")], "s-lambda")}}
        r = httpx.post(f"http://127.0.0.1:{lambda_port}/awslambda/api/v1/push", content=orjson.dumps(event),
                       headers={"Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["entries"] == 1 and answer["dropped"] == 1
        assert "has timestamp too old" in answer["errors"][0]
        assert "lambda new" in [e["line"] for e in rx.wait_for(3)]
    finally:
        rx.stop()


# ---- AWS decoders' bounds ---------------------------------------------------------------------

MS = 1_000_000


def _aws_processor(limits: LimitsConfig, kind: str = "aws_lambda") -> Processor:
    from relay.aws import firehose, settings

    rules = firehose.DEFAULT_RULES if kind == "aws_firehose" else settings.DEFAULT_RULES
    return Processor(JobConfig(name="aws", kind=kind, listen=ServerConfig(), use_incoming_timestamp=True), limits, rules)


def _decoded(streams: list[Stream]) -> list[tuple[int, str]]:
    return [(e.timestamp.seconds * S + e.timestamp.nanos, e.line) for s in streams for e in s.entries.entries]


def _event_ms(rng: random.Random) -> int:
    """A CloudWatch event time (Unix ms): mostly inside the default window, some at or past its
    edges, a few outside int64 nanoseconds (before 1970, or far beyond)."""
    oldest, newest = (NOW - 168 * HOUR) // MS, (NOW + 10 * 60 * S) // MS
    pick = rng.random()
    if pick < 0.85:
        return rng.randint(oldest + 1, newest)
    if pick < 0.97:
        return rng.choice([oldest - 1, oldest + 1, newest, newest + 1, 0, NOW // MS - 30 * DAY // MS])
    return rng.choice([-5, 10**17])


def _mark(ms: int) -> str:
    """"!" for a time outside int64 ns (new_stream may replace it; the decoder gives no bounds)."""
    return "" if 0 <= ms * MS < 1 << 63 else "!"


def _cw_data(rng: random.Random, group: str, events: int) -> bytes:
    import gzip

    log_events = []
    for i in range(events):
        ms = _event_ms(rng)
        log_events.append({"id": str(i), "timestamp": ms, "message": f"{group} {i}{_mark(ms)}"})
    doc = {"messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": group, "logStream": "s",
           "subscriptionFilters": ["f"], "logEvents": log_events}
    return gzip.compress(orjson.dumps(doc))


def _iso_ms(rng: random.Random) -> int:
    return min(max(_event_ms(rng), 0), 253_402_300_799_000)  # ISO text reaches to 9999, beyond int64 ns


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _lambda_event(rng: random.Random) -> dict[str, Any]:
    """A random Lambda event of a kind whose entries keep their own times."""
    import base64

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    kind = rng.choice(["cloudwatch", "kinesis", "sqs", "sns", "eventbridge"])
    if kind == "cloudwatch":
        return {"awslogs": {"data": b64(_cw_data(rng, "/aws/lambda/fn", rng.randint(0, 8)))}}
    if kind == "kinesis":
        records = []
        for i in range(rng.randint(1, 4)):
            rec: dict[str, Any] = {"eventSource": "aws:kinesis", "eventSourceARN": "arn:aws:kinesis:x:1:stream/k"}
            if rng.random() < 0.5:
                rec["kinesis"] = {"data": b64(_cw_data(rng, f"/g/{i % 2}", rng.randint(0, 4)))}
            elif rng.random() < 0.8:  # a plain record at its arrival time (in seconds)
                ms = _event_ms(rng)
                rec["kinesis"] = {"data": b64(f"line {i}{_mark(ms)}".encode()), "approximateArrivalTimestamp": ms / 1000}
            else:  # without one: the receive time
                rec["kinesis"] = {"data": b64(f"line {i}".encode())}
            records.append(rec)
        return {"Records": records}
    if kind == "sqs":
        records = []
        for i in range(rng.randint(1, 4)):
            ms = max(_event_ms(rng), 0)
            body = (orjson.dumps({"awslogs": {"data": b64(_cw_data(rng, "/g/sqs", rng.randint(1, 4)))}}).decode()
                    if rng.random() < 0.5 else f"message {i}{_mark(ms)}")
            records.append({"eventSource": "aws:sqs", "messageId": f"m{i}", "body": body,
                            "eventSourceARN": "arn:aws:sqs:x:1:q", "attributes": {"SentTimestamp": str(ms)}})
        return {"Records": records}
    if kind == "sns":
        notes = []
        for i in range(rng.randint(1, 3)):
            ms = _iso_ms(rng)
            notes.append({"EventSource": "aws:sns", "Sns": {"TopicArn": "arn:aws:sns:x:1:t", "Message": f"note {i}{_mark(ms)}",
                                                           "Timestamp": _iso(ms)}})
        return {"Records": notes}
    ms = _iso_ms(rng)
    return {"detail-type": "Thing Happened", "source": "app", "time": _iso(ms), "detail": {"mark": _mark(ms)}}


def _check_against_reference(p: Processor, streams: list[Stream], times: tuple[int, int] | None,
                             kind: str = "aws_lambda") -> None:
    """Processing with the decoder's bounds keeps and drops exactly what an entry-by-entry
    reference does, and tells the sender in Loki's words."""
    oldest, newest = NOW - 168 * HOUR, NOW + 10 * 60 * S
    # The reference: every entry delivered with no window at all (same labels), then judged one by one.
    copies = [Stream(dict(s.labels), StreamAdapter.FromString(s.entries.SerializeToString())) for s in streams]
    no_window = LimitsConfig(reject_old_samples=False, creation_grace_period=0)
    everything = _aws_processor(no_window, kind).process(copies, "", NOW)
    expected: dict[str, list[tuple[int, str]]] = {}
    drops = {"too_old": 0, "too_far_in_future": 0}
    for labels, pairs in delivered(everything).items():
        for t, line in pairs:
            if t < oldest:
                drops["too_old"] += 1
            elif t > newest:
                drops["too_far_in_future"] += 1
            else:
                expected.setdefault(labels, []).append((t, line))
    out = p.process(streams, "", NOW, times)
    assert delivered(out) == expected
    assert {k: v for k, v in out.dropped.items() if v} == {k: v for k, v in drops.items() if v}
    assert len(out.errors) >= (1 if any(drops.values()) else 0)
    for text in out.errors:
        assert text.startswith("entry for stream '{") and "' has timestamp too " in text


def test_lambda_bounds_from_the_decoder_agree_with_an_entry_by_entry_reference() -> None:
    # A Lambda event's decoder tells the processor its earliest and latest time: exact, or None
    # when a time is outside int64 ns (new_stream may replace it). Entries outside the window
    # are still dropped with Loki's messages.
    from relay.aws.events import SQS, parse_event

    rng = random.Random(11)
    p = _aws_processor(LimitsConfig())
    known = outside = 0
    for _ in range(300):
        parsed = parse_event(_lambda_event(rng), receive_ns=NOW)
        results = [(i.streams, i.times) for i in parsed.items] if parsed.kind == SQS else [(parsed.streams, parsed.times)]
        for streams, times in results:
            got = _decoded(streams)
            if any("!" in line for _, line in got):
                outside += 1
                assert times is None
            elif got:
                known += 1
                assert times == (min(t for t, _ in got), max(t for t, _ in got))
            else:
                assert times is None
            _check_against_reference(p, streams, times)
    assert known > 200 and outside > 5  # both cases were seen


def test_firehose_bounds_from_the_decoder_agree_with_an_entry_by_entry_reference() -> None:
    import base64

    from relay.aws.firehose import parse_request

    rng = random.Random(12)
    p = _aws_processor(LimitsConfig(), "aws_firehose")
    known = outside = 0
    for _ in range(200):
        records = []
        for i in range(rng.randint(0, 6)):
            data = (_cw_data(rng, f"/g/{i % 3}", rng.randint(0, 5)) if rng.random() < 0.7
                    else rng.choice([b"direct put", b"a\nb\n", b""]))
            records.append({"data": base64.b64encode(data).decode()})
        ms = _event_ms(rng)
        body = orjson.dumps({"requestId": "r", "timestamp": ms, "records": records})
        batch = parse_request(body, {}, receive_ns=NOW, use_incoming_timestamp=True, split_lines=rng.random() < 0.5,
                              max_size=1 << 20)
        got = _decoded(batch.streams)
        direct = any(not line.startswith("/g/") for _, line in got)  # Direct PUT lines: at the request's time
        if any("!" in line for _, line in got) or (direct and _mark(ms)):
            outside += 1
            assert batch.times is None
        elif got:
            known += 1
            assert batch.times == (min(t for t, _ in got), max(t for t, _ in got))
        else:
            assert batch.times is None
        _check_against_reference(p, batch.streams, batch.times, "aws_firehose")
    assert known > 100 and outside > 5
