"""Issue 9, item 5: no input gets a 500.

Every decoder is fed arbitrary bytes and structured-but-wrong JSON: it returns streams (which
processing then takes without raising) or raises its own 4xx error type, nothing else. Then one
fuzz loop per HTTP route against a real relay: only 2xx and 4xx answers (and the documented 502
for an S3 object that cannot be read)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import snappy
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from relay.aws import s3logs
from relay.aws import settings as aws_settings
from relay.aws.cloudwatch import PayloadError
from relay.aws.cloudwatch import parse as parse_cloudwatch
from relay.aws.events import EventError, parse_event
from relay.aws.firehose import FirehoseError, FirehoseTooLarge, parse_request
from relay.config import JobConfig, LimitsConfig, ServerConfig
from relay.model import Stream
from relay.pipeline import Processor
from relay.proto import StreamAdapter
from relay.sources.content import BadRequest, BodyTooLarge
from relay.sources.push import PushDecoder, decode_raw
from tests.conftest import RelayProcess, free_port
from tests.loki_receiver import Receiver

LIMIT = 1 << 20
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = time.time_ns()

# ---- strategies ---------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=16)
label_names = st.sampled_from(["job", "app", "a_b", "__x", "1bad", "", "é", "level"]) | st.text(max_size=6)
label_texts = st.sampled_from(['{a="b"}', "{}", '{a="\\U00110000"}', '{a="\\ud800"}', '{a="b",a="c"}', "{a=b}", "",
                               '{a="b\\', '{a="\\x41\\101\\u00e9"}']) | st.text(max_size=30)
timestamps = (st.integers(min_value=-(2**70), max_value=2**70).map(str) | st.integers() | scalars
              | st.sampled_from(["2024-13-01T00:00:00Z", "0000-01-01T00:00:00Z", "2024-01-01T00:00:00+99:99",
                                 "9999-12-31T23:59:59Z", "2024-01-01T00:00:00Z", "1e9", "-1", ""]))


def dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # the stdlib writes integers of any size, as hostile senders may


push_json = st.fixed_dictionaries({"streams": st.lists(st.fixed_dictionaries({}, optional={
    "stream": st.dictionaries(label_names, json_values, max_size=4) | json_values,
    "values": st.lists(st.lists(timestamps | json_values, max_size=4) | json_values, max_size=4) | json_values,
}), max_size=4) | json_values}).map(dumps)
legacy_json = st.fixed_dictionaries({"streams": st.lists(st.fixed_dictionaries({}, optional={
    "labels": label_texts | json_values,
    "entries": st.lists(st.fixed_dictionaries({}, optional={"ts": timestamps, "line": st.text(max_size=8) | json_values})
                        | json_values, max_size=4),
}), max_size=4)}).map(dumps)


def proto_string(field: int, data: bytes) -> bytes:
    return bytes([field << 3 | 2]) + _varint(len(data)) + data


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


# PushRequest{streams: [StreamAdapter{labels, entries: [EntryAdapter{timestamp{seconds, nanos}, line}]}]}
proto_timestamps = st.builds(
    lambda s, n: bytes([0x08]) + _varint(s % (1 << 64)) + bytes([0x10]) + _varint(n % (1 << 64)),
    st.integers(min_value=-(2**63), max_value=2**64 - 1), st.integers(min_value=-(2**31), max_value=2**32))
proto_entries = st.builds(lambda ts, line: proto_string(1, ts) + proto_string(2, line), proto_timestamps,
                          st.binary(max_size=10) | st.text(max_size=10).map(str.encode))
proto_streams = st.builds(lambda labels, entries: proto_string(1, labels) + b"".join(proto_string(2, e) for e in entries),
                          label_texts.map(lambda t: t.encode("utf-8", "surrogatepass")) | st.binary(max_size=20),
                          st.lists(proto_entries, max_size=3))
push_proto = st.lists(proto_streams, max_size=4).map(lambda ss: snappy.compress(b"".join(proto_string(1, s) for s in ss)))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


cw_docs = st.fixed_dictionaries({}, optional={
    "messageType": st.sampled_from(["DATA_MESSAGE", "CONTROL_MESSAGE"]) | json_values,
    "owner": json_values, "logGroup": json_values, "logStream": json_values, "subscriptionFilters": json_values,
    "logEvents": st.lists(st.fixed_dictionaries({}, optional={"id": json_values, "timestamp": timestamps,
                                                              "message": st.text(max_size=10) | json_values}),
                          max_size=3) | json_values,
})
cw_payloads = cw_docs.map(lambda d: gzip.compress(dumps(d))) | cw_docs.map(dumps) | st.binary(max_size=40)
record_data = (cw_payloads | st.binary(max_size=40)).map(b64) | st.text(max_size=20)
record = st.fixed_dictionaries({}, optional={
    "eventSource": st.sampled_from(["aws:s3", "aws:sqs", "aws:sns", "aws:kinesis"]) | json_values,
    "EventSource": st.sampled_from(["aws:sns"]),
    "eventName": st.sampled_from(["ObjectCreated:Put", "ObjectRemoved:Delete"]) | json_values,
    "kinesis": st.fixed_dictionaries({}, optional={"data": record_data, "approximateArrivalTimestamp": scalars}) | json_values,
    "s3": json_values, "messageId": st.text(max_size=4) | json_values, "body": st.text(max_size=30) | json_values,
    "Sns": st.fixed_dictionaries({}, optional={"Message": st.text(max_size=30) | json_values, "Timestamp": timestamps})
    | json_values,
    "attributes": st.fixed_dictionaries({}, optional={"SentTimestamp": timestamps}) | json_values,
    "eventSourceARN": json_values,
})
lambda_events = st.one_of(
    st.fixed_dictionaries({"awslogs": st.fixed_dictionaries({}, optional={"data": cw_payloads.map(b64) | json_values})
                           | json_values}),
    st.fixed_dictionaries({"Records": st.lists(record, max_size=3) | json_values}),
    st.fixed_dictionaries({"detail-type": json_values, "source": st.sampled_from(["aws.s3", "x"]) | json_values},
                          optional={"detail": json_values, "time": timestamps}),
    st.fixed_dictionaries({"Type": st.just("Notification"), "Message": st.text(max_size=30)}),
    st.fixed_dictionaries({"Event": st.just("s3:TestEvent")}),
    json_values,
)
# An SQS message whose body is itself an event, and SNS inside SQS: the recursion the relay follows.
nested_events = lambda_events.map(lambda e: {"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": json.dumps(e)}]})
lambda_bodies = (lambda_events | nested_events).map(dumps)

firehose_bodies = st.fixed_dictionaries({}, optional={
    "requestId": json_values, "timestamp": timestamps,
    "records": st.lists(st.fixed_dictionaries({}, optional={"data": record_data | json_values}) | json_values, max_size=4)
    | json_values,
}).map(dumps)


# ---- in-process: each decoder, then processing ------------------------------------------------------


def processor(kind: str, rules: Any = ()) -> Processor:
    job = JobConfig(name="fuzz", kind=kind, listen=ServerConfig(), use_incoming_timestamp=True)
    return Processor(job, LimitsConfig(), rules)


PUSH = processor("loki_push_api")
PUSH_JOB = JobConfig(name="fuzz", kind="loki_push_api", listen=ServerConfig(), use_incoming_timestamp=True)
AWS = processor("aws_lambda", aws_settings.DEFAULT_RULES)


def processed(streams: list[Stream], proc: Processor) -> None:
    """Processing takes whatever a decoder returned: invalid streams are refused, never raised."""
    proc.process(streams, "", NOW)


def legacy_body(labels: str, ts: Any) -> bytes:
    return dumps({"streams": [{"labels": labels, "entries": [{"ts": ts, "line": "x"}]}]})


def proto_body(labels: bytes) -> bytes:
    return snappy.compress(proto_string(1, proto_string(1, labels)))


# The issue's findings (500s on main before), kept as explicit examples beside the random ones.
ISSUE_EXAMPLES = [
    *[(legacy_body('{a="b"}', ts), "application/json", True)
      for ts in ["2024-13-01T00:00:00Z", "0000-01-01T00:00:00Z", "2024-01-01T00:00:00+99:99", "9999-12-31T23:59:59Z"]],
    *[(legacy_body('{a="' + esc + '"}', "2024-01-01T00:00:00Z"), "application/json", True)
      for esc in ["\\UFFFFFFFF", "\\U00110000", "\\ud800"]],
    *[(proto_body(b'{a="' + esc + b'"}'), "application/x-protobuf", False) for esc in [b"\\UFFFFFFFF", b"\\ud800"]],
]


def with_issue_examples(test: Any) -> Any:
    for body, content_type, legacy in ISSUE_EXAMPLES:
        test = example(body=body, content_type=content_type, encoding="", legacy=legacy, compress=False)(test)
    return test


@FAST
@with_issue_examples
@given(body=st.binary(max_size=200) | push_json | legacy_json | push_proto,
       content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "application/x-protobuf", ""]),
       encoding=st.sampled_from(["", "snappy", "gzip", "deflate", "br"]), legacy=st.booleans(), compress=st.booleans())
def test_push_decoder(body: bytes, content_type: str, encoding: str, legacy: bool, compress: bool) -> None:
    if compress and encoding == "gzip":
        body = gzip.compress(body)
    elif compress and encoding == "deflate":
        body = zlib.compress(body)
    try:
        decoded = PushDecoder().decode(body, content_type, encoding, LIMIT, legacy=legacy)
    except (BadRequest, BodyTooLarge):
        return
    processed(decoded.streams, PUSH)


def as_read(out: Any) -> tuple[Any, ...]:
    """An outcome as Loki would read it: the entries of each chunk decoded (their bytes may differ
    when a sender's encoding is not the canonical one, e.g. an explicit zero)."""
    chunks = {t: [(c.labels, StreamAdapter.FromString(c.data), c.count) for c in cs] for t, cs in out.chunks.items()}
    return chunks, out.entries, dict(out.dropped), out.errors


# Times around NOW (inside Loki's window, near its bounds, at second 0 or none), where the bounds matter.
near_seconds = st.integers(NOW // 10**9 - 8 * 86400, NOW // 10**9 + 3600) | st.sampled_from([0, -1])
near_timestamps = st.builds(
    lambda s, n, explicit: (bytes([0x08]) + _varint(s % (1 << 64)) if s or explicit else b"")
    + (bytes([0x10]) + _varint(n % (1 << 64)) if n else b""),
    near_seconds, st.integers(min_value=-1, max_value=10**9), st.booleans())
near_entries = st.builds(
    lambda ts, line, md: (b"" if ts is None else proto_string(1, ts)) + proto_string(2, line) + md,
    st.none() | near_timestamps, st.binary(max_size=6) | st.text(max_size=6).map(str.encode),
    st.sampled_from([b"", proto_string(3, proto_string(1, b"k") + proto_string(2, b"v")),
                     proto_string(3, proto_string(2, b"\xff"))]))
near_push = st.lists(st.builds(lambda labels, entries: proto_string(1, labels) + b"".join(proto_string(2, e) for e in entries),
                               st.sampled_from([b'{a="b"}', b'{a="c"}', b"{}", b'{a="\xc3"}']),
                               st.lists(near_entries, max_size=4)),
                     max_size=3).map(lambda ss: snappy.compress(b"".join(proto_string(1, s) for s in ss)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=near_push | push_proto | st.binary(max_size=200).map(snappy.compress))
def test_push_protobuf_passed_through_agrees_with_the_full_path(body: bytes) -> None:
    got = []
    for decoder in (PushDecoder(), PushDecoder(pass_through=True)):
        try:
            d = decoder.protobuf(body, LIMIT)
        except BadRequest as e:
            got.append(str(e))
            continue
        out = Processor(PUSH_JOB, LimitsConfig()).process(d.streams, "", NOW, d.times)
        got.append((d.errors, d.invalid_entries, as_read(out)))
    assert got[0] == got[1]


@FAST
@given(body=st.binary(max_size=200), encoding=st.sampled_from(["", "gzip", "deflate", "zstd"]))
def test_raw_decoder(body: bytes, encoding: str) -> None:
    try:
        decoded = decode_raw(body, encoding, LIMIT, NOW)
    except (BadRequest, BodyTooLarge):
        return
    processed(decoded.streams, PUSH)


@FAST
@given(doc=lambda_events | nested_events | json_values, keep_stream=st.booleans())
def test_lambda_event_parser(doc: Any, keep_stream: bool) -> None:
    try:
        parsed = parse_event(doc, keep_stream=keep_stream, receive_ns=NOW, limit=LIMIT)
    except EventError:
        return
    processed(parsed.streams, AWS)
    for item in parsed.items:
        processed(item.streams, AWS)


@FAST
@given(data=cw_payloads)
def test_cloudwatch_payload_parser(data: bytes) -> None:
    try:
        parse_cloudwatch(data, LIMIT)
    except (PayloadError, OverflowError):
        pass


@FAST
@given(body=firehose_bodies | st.binary(max_size=100), gz=st.booleans(), incoming=st.booleans(), split=st.booleans(),
       attributes=st.text(max_size=40) | json_values.map(json.dumps))
def test_firehose_parser(body: bytes, gz: bool, incoming: bool, split: bool, attributes: str) -> None:
    headers = {"X-Amz-Firehose-Common-Attributes": attributes}
    if gz:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    try:
        batch = parse_request(body, headers, receive_ns=NOW, use_incoming_timestamp=incoming, split_lines=split,
                              max_size=LIMIT)
    except (FirehoseError, FirehoseTooLarge):
        return
    processed(batch.streams, AWS)


S3_KEYS = [
    "AWSLogs/111122223333/elasticloadbalancing/eu-west-1/2024/01/02/111122223333_elasticloadbalancing_eu-west-1_app.lb_x.log.gz",
    "AWSLogs/111122223333/vpcflowlogs/eu-west-1/2024/01/02/111122223333_vpcflowlogs_eu-west-1_fl-1_x.log.gz",
    "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/01/02/111122223333_CloudTrail_eu-west-1_x.json.gz",
    "E2K2LNL5N3WR51.2024-01-02-03.abcd.gz",
    "AWSLogs/111122223333/WAFLogs/eu-west-1/acl/2024/01/02/03/04/111122223333_waflogs_x.log.gz",
    "AWSLogs/111122223333/GuardDuty/eu-west-1/2024/01/02/x.jsonl.gz",
    "AWSLogs/111122223333/KafkaBrokerLogs/eu-west-1/cluster-1/2024-01-02-03/x.log.gz",
    "111122223333/eu-west-1/bucket/2024/01/02/2024-01-02-03-04-05-ABCDEF0123456789",
    "unknown/key.txt",
]


@FAST
@given(key=st.sampled_from(S3_KEYS),
       data=st.binary(max_size=200) | st.lists(st.text(max_size=30), max_size=5).map(lambda ls: "\n".join(ls).encode())
       | st.fixed_dictionaries({"Records": st.lists(json_values, max_size=3)}).map(dumps) | json_values.map(dumps),
       gz=st.booleans())
def test_s3_object_reader(key: str, data: bytes, gz: bool) -> None:
    obj = s3logs.classify("bucket", key)
    body = io.BytesIO(gzip.compress(data) if gz else data)
    try:
        chunks = list(s3logs.read_entries(obj, body, NOW, max_bytes=LIMIT))
    except (s3logs.S3LogError, s3logs.ObjectTooLarge):
        return
    from relay.model import new_stream
    processed([new_stream(dict(obj.labels), c) for c in chunks], AWS)


# ---- over HTTP: one fuzz loop per route -------------------------------------------------------------


class Ports:
    def __init__(self, push: int, aws: int, firehose: int) -> None:
        self.push, self.aws, self.firehose = push, aws, firehose


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ports]:
    rx = Receiver.start()
    ports = Ports(free_port(), free_port(), free_port())

    def server(port: int) -> dict[str, Any]:
        return {"server": {"http_listen_address": "127.0.0.1", "http_listen_port": port}}

    closed = free_port()  # S3 reads fail fast (502) instead of reaching for AWS
    config = {
        "clients": [{"url": rx.url, "batchwait": "100ms"}],
        "scrape_configs": [
            {"job_name": "push", "loki_push_api": {**server(ports.push), "max_send_msg_size": LIMIT}},
            {"job_name": "aws", "aws_lambda": {**server(ports.aws), "max_send_msg_size": LIMIT,
                                               "s3": {"endpoint_url": f"http://127.0.0.1:{closed}", "region": "eu-west-1",
                                                      "access_key_id": "x", "secret_access_key": "y"}}},
            {"job_name": "firehose", "aws_firehose": {**server(ports.firehose), "max_send_msg_size": LIMIT}},
        ],
    }
    rel = RelayProcess(tmp_path_factory.mktemp("relay"), config, [], None)
    try:
        rel.wait_ready()
        yield ports
    finally:
        rel.stop()
        rx.stop()


HTTP = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])
CLIENT = httpx.Client(timeout=30)


def check(r: httpx.Response, body: bytes) -> None:
    if r.status_code == 502 and r.text.startswith("cannot read S3 object"):
        return  # documented: the event named an S3 object, and S3 (here a closed port) cannot serve it
    assert r.status_code < 500, f"{r.status_code} {r.text[:300]!r} for {body[:300]!r}"


@HTTP
@given(body=st.binary(max_size=200) | push_json | legacy_json | push_proto,
       path=st.sampled_from(["/loki/api/v1/push", "/api/prom/push", "/promtail/api/v1/raw"]),
       content_type=st.sampled_from(["application/json", "application/x-protobuf", None]),
       encoding=st.sampled_from([None, "gzip", "snappy", "deflate", "br"]),
       tenant=st.sampled_from([None, "", "a", "..", "x" * 200, "a/b"]))
def test_push_routes_answer_2xx_or_4xx(relay: Ports, body: bytes, path: str, content_type: str | None,
                                       encoding: str | None, tenant: str | None) -> None:
    headers = {k: v for k, v in [("Content-Type", content_type), ("Content-Encoding", encoding),
                                  ("X-Scope-OrgID", tenant)] if v is not None}
    check(CLIENT.post(f"http://127.0.0.1:{relay.push}{path}", content=body, headers=headers), body)


@HTTP
@given(body=lambda_bodies | st.binary(max_size=200), tenant=st.sampled_from([None, "a", "..", "a b"]))
def test_lambda_route_answers_2xx_or_4xx(relay: Ports, body: bytes, tenant: str | None) -> None:
    headers = {"X-Scope-OrgID": tenant} if tenant is not None else {}
    check(CLIENT.post(f"http://127.0.0.1:{relay.aws}/awslambda/api/v1/push", content=body, headers=headers), body)


@HTTP
@given(body=firehose_bodies | st.binary(max_size=200), gz=st.booleans(),
       attributes=st.none() | st.text(max_size=40) | json_values.map(json.dumps),
       request_id=st.none() | st.text(alphabet="abc-", max_size=8))
def test_firehose_route_answers_2xx_or_4xx(relay: Ports, body: bytes, gz: bool, attributes: str | None,
                                           request_id: str | None) -> None:
    headers = {}
    if gz:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    if attributes is not None:
        headers["X-Amz-Firehose-Common-Attributes"] = "".join(c for c in attributes if " " <= c <= "~").strip()
    if request_id is not None:
        headers["X-Amz-Firehose-Request-Id"] = request_id
    check(CLIENT.post(f"http://127.0.0.1:{relay.firehose}/awsfirehose/api/v1/push", content=body, headers=headers), body)
