"""Hostile input: decoders never crash on bad bytes, bombs are cut with 413, limits are applied and
counted, and no request shape makes a listener answer 5xx or hang."""

from __future__ import annotations

import gzip
import os
import random
import time
import zlib

import httpx
import orjson
import pytest
import snappy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.sources.content import BadRequest, BodyTooLarge, decode_content, snappy_block
from relay.sources.push import PushDecoder
from tests.conftest import free_port, push_config
from tests.loki_receiver import Receiver, build_push_request, encode_push

LIMIT = 1 << 16
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- decoders: only the documented errors, whatever the bytes --------------------------------


@FAST
@given(st.binary(max_size=2048))
def test_protobuf_decoder_random_bytes(raw: bytes) -> None:
    dec = PushDecoder()
    for body in (raw, snappy.compress(raw)):
        try:
            dec.protobuf(body, LIMIT)
        except (BadRequest, BodyTooLarge):
            pass


label_text = st.one_of(
    st.text(max_size=80),
    st.builds(lambda n, v: "{" + f'{n}="{v}"' + "}", st.text(max_size=20), st.text(max_size=20)),
    st.builds(lambda k: "{" + ", ".join(f'l{i}="v"' for i in range(k)) + "}", st.integers(0, 300)),
)
entries = st.lists(st.tuples(st.integers(0, 2**63 - 1), st.text(max_size=200)), max_size=20)


@FAST
@given(st.lists(st.tuples(label_text, entries), max_size=8))
def test_protobuf_decoder_structured(streams: list) -> None:
    body = snappy.compress(build_push_request(streams))
    dec = PushDecoder()
    out = dec.protobuf(body, 1 << 24)
    assert len(out.streams) + len(out.errors) == len(streams)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


@FAST
@given(st.one_of(st.binary(max_size=1024), json_values.map(orjson.dumps),
                 st.builds(lambda s: orjson.dumps({"streams": s}), json_values)))
def test_json_decoders(raw: bytes) -> None:
    dec = PushDecoder()
    for f in (dec.json, dec.legacy_json):
        try:
            f(raw)
        except BadRequest:
            pass


@FAST
@given(st.binary(max_size=2048), st.sampled_from(["", "gzip", "deflate", "snappy", "identity", "br", "GZIP", "x"]))
def test_decode_content(raw: bytes, enc: str) -> None:
    for body in (raw, gzip.compress(raw), zlib.compress(raw)):
        try:
            out = decode_content(body, enc, LIMIT)
            assert len(out) <= LIMIT or enc.strip().lower() in ("", "identity", "snappy")
        except (BadRequest, BodyTooLarge):
            pass


@FAST
@given(st.binary(max_size=2048))
def test_snappy_block(raw: bytes) -> None:
    try:
        snappy_block(raw, LIMIT)
    except (BadRequest, BodyTooLarge):
        pass


def test_bombs_are_cut_at_the_limit() -> None:
    zeros = b"\0" * (50 << 20)
    with pytest.raises(BodyTooLarge):
        decode_content(gzip.compress(zeros, 9), "gzip", LIMIT)
    with pytest.raises(BodyTooLarge):
        decode_content(zlib.compress(zeros, 9), "deflate", LIMIT)
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    with pytest.raises(BodyTooLarge):
        decode_content(raw.compress(zeros) + raw.flush(), "deflate", LIMIT)
    with pytest.raises(BodyTooLarge):
        snappy_block(snappy.compress(zeros), LIMIT)
    with pytest.raises(BodyTooLarge):  # a lying length preamble is refused before decoding
        snappy_block(b"\xff\xff\xff\xff\x0f" + b"\0" * 10, LIMIT)


def _optional(module: str):  # noqa: ANN202
    try:
        return __import__(module, fromlist=["*"])
    except ImportError:
        return None


firehose = _optional("relay.aws.firehose")
lambda_events = _optional("relay.aws.events")


@pytest.mark.skipif(firehose is None or not hasattr(firehose, "parse_request"), reason="no Firehose source")
@FAST
@given(st.one_of(st.binary(max_size=1024), json_values.map(orjson.dumps),
                 st.builds(lambda r: orjson.dumps({"requestId": "x", "timestamp": 1, "records": r}), json_values)),
       st.sampled_from(["", "gzip"]))
def test_firehose_parse_request(raw: bytes, enc: str) -> None:
    headers = {"Content-Encoding": enc} if enc else {}
    try:
        firehose.parse_request(raw, headers, receive_ns=time.time_ns(), use_incoming_timestamp=False, max_size=LIMIT)
    except (firehose.FirehoseError, firehose.FirehoseTooLarge):
        pass


@pytest.mark.skipif(lambda_events is None or not hasattr(lambda_events, "parse_event"), reason="no Lambda events")
@FAST
@given(json_values)
def test_lambda_parse_event(doc: object) -> None:
    try:
        lambda_events.parse_event(doc, receive_ns=time.time_ns(), limit=LIMIT)
    except lambda_events.EventError:
        pass


@pytest.mark.skipif(lambda_events is None or not hasattr(lambda_events, "parse_event"), reason="no Lambda events")
@FAST
@given(st.binary(max_size=512), st.sampled_from(["awslogs", "kinesis"]))
def test_lambda_parse_event_bad_payloads(data: bytes, kind: str) -> None:
    import base64

    b64 = base64.b64encode(data).decode()
    gz = base64.b64encode(gzip.compress(data)).decode()
    docs = [{"awslogs": {"data": b64}}, {"awslogs": {"data": gz}}] if kind == "awslogs" else [
        {"Records": [{"eventSource": "aws:kinesis", "kinesis": {"data": d}}]} for d in (b64, gz)]
    for doc in docs:
        try:
            lambda_events.parse_event(doc, receive_ns=time.time_ns(), limit=LIMIT)
        except lambda_events.EventError:
            pass


# ---- over HTTP --------------------------------------------------------------------------------


@pytest.fixture
def relay_1mb(start_relay, receiver: Receiver):  # noqa: ANN201
    port = free_port()
    cfg = push_config(receiver.url, port, max_send_msg_size="1MiB", labels={"job": "raw"})
    cfg["limits_config"] = {"max_line_size": 1000}
    relay = start_relay(cfg)
    return relay, port


def test_bombs_over_http_answer_413(relay_1mb) -> None:
    relay, port = relay_1mb
    zeros = b"\0" * (64 << 20)
    url = relay.url(port)
    with httpx.Client(timeout=30) as http:
        t0 = time.monotonic()
        r = http.post(url, content=gzip.compress(zeros, 9), headers={"content-type": "application/json", "content-encoding": "gzip"})
        assert r.status_code == 413
        raw = zlib.compressobj(9, zlib.DEFLATED, -15)
        r = http.post(url, content=raw.compress(zeros) + raw.flush(),
                      headers={"content-type": "application/json", "content-encoding": "deflate"})
        assert r.status_code == 413
        r = http.post(url, content=snappy.compress(zeros), headers={"content-type": "application/x-protobuf"})
        assert r.status_code == 413
        r = http.post(url, content=b"\xff\xff\xff\xff\x0f", headers={"content-type": "application/x-protobuf"})
        assert r.status_code == 413
        r = http.post(relay.url(port, "/promtail/api/v1/raw"), content=gzip.compress(zeros, 9),
                      headers={"content-encoding": "gzip"})
        assert r.status_code == 413
        r = http.post(url, content=os.urandom(2 << 20), headers={"content-type": "application/x-protobuf"})
        assert r.status_code == 413
        assert time.monotonic() - t0 < 10


def test_line_size_limit_drop_counted(relay_1mb, receiver: Receiver) -> None:
    relay, port = relay_1mb
    now = time.time_ns()
    body = encode_push([('{job="big"}', [(now, "ok"), (now + 1, "x" * 5000), (now + 2, "ok2")])])
    r = httpx.post(relay.url(port), content=body, headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 204
    got = receiver.wait_for(2, 10)
    assert [e["line"] for e in got] == ["ok", "ok2"]
    assert relay.metric("loki_relay_dropped_entries_total", reason="line_too_long") == 1


def test_line_size_limit_truncate_counted(start_relay, receiver: Receiver) -> None:
    port = free_port()
    cfg = push_config(receiver.url, port)
    cfg["limits_config"] = {"max_line_size": 1000, "max_line_size_truncate": True}
    relay = start_relay(cfg)
    now = time.time_ns()
    body = encode_push([('{job="big"}', [(now, "é" * 3000)])])
    assert httpx.post(relay.url(port), content=body, headers={"content-type": "application/x-protobuf"}).status_code == 204
    (e,) = receiver.wait_for(1, 10)
    assert len(e["line"].encode()) <= 1000 and e["line"] == "é" * 500
    assert relay.metric("loki_relay_truncated_entries_total") == 1


def test_absurd_labels_refused_like_loki_and_counted(relay_1mb, receiver: Receiver) -> None:
    relay, port = relay_1mb
    now = time.time_ns()
    many = "{" + ", ".join(f'l{i}="v"' for i in range(500)) + "}"
    long_name = "{" + "n" * 5000 + '="v"}'
    long_value = '{app="' + "v" * 10000 + '"}'
    body = encode_push([(many, [(now, "a")]), (long_name, [(now, "b")]), (long_value, [(now, "c")]),
                        ('{job="fine"}', [(now, "d")])])
    r = httpx.post(relay.url(port), content=body, headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 400  # as Loki: the valid stream is taken, the sender learns what was refused
    assert [e["line"] for e in receiver.wait_for(1, 10)] == ["d"]
    assert relay.metric("loki_relay_dropped_entries_total", reason="invalid") == 3


def test_http_fuzz_never_5xx(relay_1mb) -> None:
    relay, port = relay_1mb
    rnd = random.Random(1234)
    now = time.time_ns()
    good = build_push_request([('{job="fuzz"}', [(now + i, f"line {i}") for i in range(20)])])
    seeds = [good, snappy.compress(good), b'{"streams":[{"stream":{"job":"x"},"values":[["1","a"]]}]}',
             b'{"streams":[{"labels":"{job=\\"x\\"}","entries":[{"ts":"2024-01-01T00:00:00Z","line":"a"}]}]}']
    ctypes = ["application/x-protobuf", "application/json", "application/json; charset=utf-8", "", "text/plain",
              "application/json; charsetutf-8", "*/*", ";;"]
    encs = ["", "gzip", "deflate", "snappy", "br", "gzip, deflate"]
    paths = ["/loki/api/v1/push", "/api/prom/push", "/promtail/api/v1/raw"]
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=10) as http:
        for i in range(400):
            body = bytearray(rnd.choice(seeds))
            for _ in range(rnd.randrange(0, 8)):
                op = rnd.randrange(4)
                pos = rnd.randrange(len(body) + 1)
                if op == 0 and body:
                    body[min(pos, len(body) - 1)] = rnd.randrange(256)
                elif op == 1:
                    body[pos:pos] = os.urandom(rnd.randrange(1, 16))
                elif op == 2:
                    del body[pos:pos + rnd.randrange(1, 16)]
                else:
                    body = body[:pos]
            enc = rnd.choice(encs)
            data = bytes(body)
            if enc == "gzip" and rnd.random() < 0.7:
                data = gzip.compress(data)
            elif enc == "deflate" and rnd.random() < 0.7:
                data = zlib.compress(data)
            headers = {"content-encoding": enc} if enc else {}
            ct = rnd.choice(ctypes)
            if ct:
                headers["content-type"] = ct
            if rnd.random() < 0.1:
                headers["x-scope-orgid"] = rnd.choice(["a|b", "..", "x" * 300, "t\\u00e9", "a b"])
            r = http.post(relay.url(port, rnd.choice(paths)), content=data, headers=headers)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, (i, r.status_code, r.text, headers)
    assert relay.proc.poll() is None
    assert httpx.get(f"http://127.0.0.1:{relay.server_port}/ready").status_code == 200
    assert len(statuses) >= 2


# ---- findings of the atheris run (fuzz/fuzz_decoders.py), kept as regression tests -----------------


def test_json_timestamp_beyond_int64_is_an_invalid_stream_not_a_crash() -> None:
    body = orjson.dumps({"streams": [
        {"stream": {"job": "ok"}, "values": [["1700000000000000000", "kept"]]},
        {"stream": {"job": "bad"}, "values": [["1" + "4" * 60, "refused"]]},
    ]})
    out = PushDecoder().json(body)
    assert [s.labels for s in out.streams] == [{"job": "ok"}]
    assert len(out.errors) == 1 and "out of range" in out.errors[0]


def test_lambda_event_with_non_ascii_base64_is_an_event_error() -> None:
    from relay.aws.events import EventError, parse_event

    with pytest.raises(EventError, match="not base64"):
        parse_event({"awslogs": {"data": "é" * 8}}, receive_ns=time.time_ns())


def test_aws_timestamp_beyond_int64_falls_back_to_now() -> None:
    from relay.aws.events import parse_event

    before = time.time_ns()
    event = {"Records": [{"messageId": "m1", "eventSource": "aws:sqs", "body": "plain text",
                          "attributes": {"SentTimestamp": "9" * 30},
                          "eventSourceARN": "arn:aws:sqs:us-east-1:1:q"}]}
    parsed = parse_event(event, receive_ns=before)
    (item,) = parsed.items
    (stream,) = item.streams
    (entry,) = stream.entries.entries
    assert entry.line == "plain text"
    assert entry.timestamp.seconds * 1_000_000_000 + entry.timestamp.nanos >= before


def test_kinesis_arrival_time_beyond_int64_falls_back_to_now() -> None:
    # An atheris find (it was crash-d88f462b... at the repository root): a Kinesis record whose
    # approximateArrivalTimestamp, in seconds, is beyond int64 once in nanoseconds. Integer seconds take
    # another branch than the SQS SentTimestamp above; the entry must get the current time, not raise.
    from relay.aws.events import KINESIS, parse_event

    raw = (
        b'{\n\t"Records": [\n\t\t{\n\t\t"kinesis": {"partitionKey": "s1",\n'
        b'\t\t\t"sequencmaVersion": "Objectr Cea44444444444444444444444",\n'
        b'\t\t\t"data": "mSGVsbG8gV29ybGQ=",\n'
        b'\t\t"approximateArrivalTimestamp": 14808444444444444477}\n\t\t,\n'
        b'\t\t"eventSource": "aws:kinesis",\n\t\t"eventVName": "aws:Yc1ream+tream"\n\t\t}\n\t]\n}'
    )
    before = time.time_ns()
    parsed = parse_event(orjson.loads(raw), receive_ns=before)
    after = time.time_ns()
    assert parsed.kind == KINESIS
    (stream,) = parsed.streams
    (entry,) = stream.entries.entries
    assert before <= entry.timestamp.seconds * 1_000_000_000 + entry.timestamp.nanos <= after
