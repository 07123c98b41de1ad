"""relay.aws.events: Lambda event payloads -> streams, S3 work items and SQS items."""

from __future__ import annotations

import base64
import calendar
import copy
import gzip
from typing import Any

import orjson
import pytest

from relay.aws.events import (
    CLOUDWATCH,
    EVENTBRIDGE,
    KINESIS,
    S3,
    S3_TEST,
    SNS,
    SQS,
    EventError,
    ParsedEvent,
    S3Ref,
    parse_event,
)
from relay.model import Stream
from tests.payloads import ACCOUNT, load, text

RECEIVE_NS = 1_700_000_000_123_456_789

# as in our payloads (tests/payloads/make.py)
KINESIS_ARN = f"arn:aws:kinesis:eu-west-3:{ACCOUNT}:stream/app-events"
QUEUE_ARN = f"arn:aws:sqs:eu-west-3:{ACCOUNT}:log-drop"
TOPIC_ARN = f"arn:aws:sns:eu-west-3:{ACCOUNT}:ops-alerts"
UPLOADED = S3Ref("relay-test-uploads", "reports/Q1 summary (2025).txt", "eu-west-3")  # s3-notification.json
DROPPED = S3Ref("relay-test-drop", "exports/2025-03-14/orders.csv", "eu-west-3")  # eventbridge-s3.json


def utc_ns(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ns: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1_000_000_000 + ns


def parse(doc: Any, **kw: Any) -> ParsedEvent:
    kw.setdefault("receive_ns", RECEIVE_NS)
    return parse_event(doc, **kw)


def entries(stream: Stream) -> list[tuple[int, str]]:
    return [(e.timestamp.seconds * 1_000_000_000 + e.timestamp.nanos, e.line) for e in stream.entries.entries]


def only_stream(streams: list[Stream]) -> Stream:
    assert len(streams) == 1
    return streams[0]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def cloudwatch_payload(message_type: str = "DATA_MESSAGE", **over: Any) -> dict[str, Any]:
    doc = {
        "messageType": message_type,
        "owner": ACCOUNT,
        "logGroup": "/aws/lambda/fn",
        "logStream": "2025/03/14/[$LATEST]0a1b2c",
        "subscriptionFilters": ["f"],
        "logEvents": [{"id": "1", "timestamp": 1719922604969, "message": "hello"}],
    }
    doc.update(over)
    return doc


def kinesis_record(data: bytes, arn: str = KINESIS_ARN, arrival: Any = 1480641523.477) -> dict[str, Any]:
    return {
        "kinesis": {
            "partitionKey": "p",
            "sequenceNumber": "1",
            "data": b64(data),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventSourceARN": arn,
        "eventName": "aws:kinesis:record",
    }


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "h",
        "body": body,
        "attributes": {"SentTimestamp": "1741944400100"},
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "eu-west-3",
    }


def sns_envelope(message: str) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
        "TopicArn": TOPIC_ARN,
        "Message": message,
        "Timestamp": "2025-03-14T09:58:00.5Z",
        "SignatureVersion": "1",
    }


# --- CloudWatch Logs ----------------------------------------------------------------------


def test_cloudwatch_logs_event() -> None:
    result = parse(load("events/cloudwatch-logs.json"))
    assert result.kind == CLOUDWATCH and result.s3_objects == [] and result.items == []
    stream = only_stream(result.streams)
    assert stream.labels == {
        "__aws_log_type": "cloudwatch",
        "__aws_cloudwatch_log_group": "/ecs/orders-api",
        "__aws_cloudwatch_owner": ACCOUNT,
    }
    assert entries(stream) == [
        (1741944001250 * 1_000_000, "GET /orders/1001 200 12ms"),
        (1741944001257 * 1_000_000, "GET /orders/1002 200 9ms"),
        (1741944001264 * 1_000_000, "POST /orders 500 230ms: db timeout"),
    ]
    assert result.ts_fallback == 0


def test_cloudwatch_keep_stream() -> None:
    stream = only_stream(parse(load("events/cloudwatch-logs.json"), keep_stream=True).streams)
    assert stream.labels["__aws_cloudwatch_log_stream"] == "orders-api/web/4f1c2e3d5b6a7980"


def test_cloudwatch_control_message_has_no_entries() -> None:
    data = b64(gzip.compress(orjson.dumps(cloudwatch_payload("CONTROL_MESSAGE", owner="CloudwatchLogs"))))
    result = parse({"awslogs": {"data": data}})
    assert result.kind == CLOUDWATCH and result.streams == [] and result.ignored == 1


# --- Kinesis ------------------------------------------------------------------------------


def test_kinesis_plain_records_are_ingested() -> None:
    result = parse(load("events/kinesis-plain.json"))
    assert result.kind == KINESIS
    stream = only_stream(result.streams)
    assert stream.labels == {"__aws_log_type": "kinesis", "__aws_kinesis_event_source_arn": KINESIS_ARN}
    assert entries(stream) == [
        (1741944200_125000000, "order 1001 shipped to warehouse B"),  # its one trailing newline trimmed
        (1741944201_500000000, "order 1002 packed"),
    ]
    assert result.ts_fallback == 0 and result.skipped == {}


@pytest.mark.parametrize("gz", [True, False])
def test_kinesis_carrying_cloudwatch_payload(gz: bool) -> None:
    payload = text("events/cloudwatch-payload.json").encode()
    data = gzip.compress(payload) if gz else payload
    result = parse({"Records": [kinesis_record(data)]})
    stream = only_stream(result.streams)
    assert stream.labels == {
        "__aws_log_type": "kinesis",
        "__aws_kinesis_event_source_arn": KINESIS_ARN,
        "__aws_cloudwatch_log_group": "/aws/lambda/invoice-renderer",
        "__aws_cloudwatch_owner": ACCOUNT,
    }
    assert entries(stream) == [
        (1741944100000 * 1_000_000, "START RequestId: 0b1c2d3e Version: $LATEST"),
        (1741944100040 * 1_000_000, "rendered invoice INV-20250314-0042"),
        (1741944100041 * 1_000_000, "END RequestId: 0b1c2d3e"),
    ]
    kept = only_stream(parse({"Records": [kinesis_record(data)]}, keep_stream=True).streams)
    assert kept.labels["__aws_cloudwatch_log_stream"] == "2025/03/14/[$LATEST]8a7b6c5d4e3f20119a8b7c6d5e4f3a2b"


def test_kinesis_event_carrying_cloudwatch_payload() -> None:
    # the event as Lambda delivers it: the record's data is base64 of the gzipped payload
    result = parse(load("events/kinesis-cloudwatch.json"))
    assert result.kind == KINESIS and result.skipped == {} and result.ts_fallback == 0
    stream = only_stream(result.streams)
    assert stream.labels["__aws_cloudwatch_log_group"] == "/aws/lambda/invoice-renderer"
    assert stream.labels["__aws_kinesis_event_source_arn"] == KINESIS_ARN
    assert [line for _, line in entries(stream)][1] == "rendered invoice INV-20250314-0042"
    assert len(entries(stream)) == 3


def test_kinesis_mixed_records_group_by_labels() -> None:
    other = f"arn:aws:kinesis:eu-west-3:{ACCOUNT}:stream/other"
    control = gzip.compress(orjson.dumps(cloudwatch_payload("CONTROL_MESSAGE")))
    records = [
        kinesis_record(b"line one\n"),
        kinesis_record(gzip.compress(b"gzipped text")),
        kinesis_record(b"line two\r\n", arn=other, arrival=1480641524),
        kinesis_record(gzip.compress(orjson.dumps(cloudwatch_payload()))),
        kinesis_record(control),
        kinesis_record(b"no arrival time", arrival=None),
        kinesis_record(b""),
        kinesis_record(b"\x1f\x8bnot really gzip"),
    ]
    records.append(dict(kinesis_record(b"x"), kinesis={"data": "@@not base64@@"}))
    result = parse({"Records": records})
    by_labels = {tuple(sorted(s.labels.items())): entries(s) for s in result.streams}
    assert by_labels == {
        (("__aws_kinesis_event_source_arn", KINESIS_ARN), ("__aws_log_type", "kinesis")): [
            (1480641523_477000000, "line one"),
            (1480641523_477000000, "gzipped text"),
            (RECEIVE_NS, "no arrival time"),
        ],
        (("__aws_kinesis_event_source_arn", other), ("__aws_log_type", "kinesis")): [
            (1480641524_000000000, "line two")
        ],
        (
            ("__aws_cloudwatch_log_group", "/aws/lambda/fn"),
            ("__aws_cloudwatch_owner", ACCOUNT),
            ("__aws_kinesis_event_source_arn", KINESIS_ARN),
            ("__aws_log_type", "kinesis"),
        ): [(1719922604969 * 1_000_000, "hello")],
    }
    assert result.ignored == 1 and result.ts_fallback == 1
    assert result.skipped == {"empty": 1, "gzip-deflate": 1, "base64-decode": 1}


def test_kinesis_too_large_is_skipped() -> None:
    result = parse({"Records": [kinesis_record(gzip.compress(b"x" * 10_000))]}, limit=1000)
    assert result.streams == [] and result.skipped == {"too-large": 1}


# --- S3 notifications -----------------------------------------------------------------------


def test_s3_notification_key_is_url_decoded() -> None:
    result = parse(load("events/s3-notification.json"))  # key "reports/Q1+summary+%282025%29.txt"
    assert result.kind == S3 and result.streams == []
    assert result.s3_objects == [UPLOADED]


def test_s3_notification_with_generated_tags() -> None:
    doc = load("events/s3-generated-tags.json")
    assert "awsGeneratedTags" in doc["Records"][0]["s3"]["bucket"]
    result = parse(doc)
    assert result.s3_objects == [
        S3Ref(
            f"org-trail-logs-{ACCOUNT}-eu-west-3",
            f"AWSLogs/{ACCOUNT}/CloudTrail/eu-west-3/2025/03/14/trail-export_CloudTrail_eu-west-3.json.gz",
            "eu-west-3",
        )
    ]


def test_s3_test_event_is_accepted_and_ignored() -> None:
    result = parse(load("events/s3-test-event.json"))
    assert result.kind == S3_TEST and result.streams == [] and result.s3_objects == [] and result.ignored == 1


def test_s3_notification_plus_and_percent_and_other_event_names() -> None:
    doc = load("events/s3-notification.json")
    rec = doc["Records"][0]
    plus = copy.deepcopy(rec)
    plus["s3"]["object"]["key"] = "my+prefix/a%2Bb%3Dc.log.gz"
    removed = copy.deepcopy(rec)
    removed["eventName"] = "ObjectRemoved:Delete"
    doc["Records"] = [plus, removed]
    result = parse(doc)
    assert result.s3_objects == [S3Ref("relay-test-uploads", "my prefix/a+b=c.log.gz", "eu-west-3")]
    assert result.ignored == 1


# --- SNS, SQS -------------------------------------------------------------------------------


def test_sns_plain_message() -> None:
    result = parse(load("events/sns.json"))
    assert result.kind == SNS
    stream = only_stream(result.streams)
    assert stream.labels == {"__aws_log_type": "sns", "__aws_sns_topic_arn": TOPIC_ARN}
    assert entries(stream) == [(utc_ns(2025, 3, 14, 9, 55, 10, 250_000_000), "disk /var at 91% on shop-web-2")]


def test_sns_carrying_s3_notification() -> None:
    doc = load("events/sns.json")
    doc["Records"][0]["Sns"]["Message"] = text("events/s3-notification.json")
    result = parse(doc)
    assert result.kind == SNS and result.streams == []
    assert result.s3_objects == [UPLOADED]


def test_top_level_sns_envelope() -> None:
    result = parse(sns_envelope("hello"))
    assert result.kind == SNS
    assert entries(only_stream(result.streams)) == [(utc_ns(2025, 3, 14, 9, 58, 0, 500_000_000), "hello")]


def test_sqs_plain_body() -> None:
    result = parse(load("events/sqs.json"))
    assert result.kind == SQS and result.streams == [] and result.s3_objects == []
    first, second = result.items
    assert first.message_id == "2e1d0c9b-8a7f-4e6d-5c4b-3a2918071600"
    assert second.message_id == "2e1d0c9b-8a7f-4e6d-5c4b-3a2918071601"
    for item in result.items:
        assert item.error is None and item.s3_objects == []
        assert only_stream(item.streams).labels == {"__aws_log_type": "sqs", "__aws_sqs_queue_arn": QUEUE_ARN}
    assert entries(first.streams[0]) == [(1741944400100 * 1_000_000, "backup of db-main finished in 412s")]
    assert entries(second.streams[0]) == [(1741944401200 * 1_000_000, "backup of db-replica finished in 388s")]


def test_sqs_wrapping_sns_wrapping_s3_and_other_bodies() -> None:
    s3_event = text("events/s3-notification.json")
    broken_s3 = orjson.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}).decode()
    cw_event = text("events/cloudwatch-logs.json")
    doc = {
        "Records": [
            sqs_record("m1", orjson.dumps(sns_envelope(s3_event)).decode()),
            sqs_record("m2", "just some text"),
            sqs_record("m3", text("events/eventbridge-s3.json")),
            sqs_record("m4", broken_s3),
            sqs_record("m5", cw_event),
            sqs_record("m6", orjson.dumps(sns_envelope("plain from SNS")).decode()),
            sqs_record("m7", '{"pass": "pass"}'),
            sqs_record("m8", s3_event),
        ]
    }
    result = parse(doc)
    assert result.kind == SQS and result.streams == [] and result.s3_objects == []
    items = {item.message_id: item for item in result.items}
    assert list(items) == ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]

    assert items["m1"].s3_objects == [UPLOADED]
    assert items["m1"].streams == [] and items["m1"].error is None

    assert [(s.labels, entries(s)) for s in items["m2"].streams] == [
        ({"__aws_log_type": "sqs", "__aws_sqs_queue_arn": QUEUE_ARN}, [(1741944400100 * 1_000_000, "just some text")])
    ]
    assert items["m3"].s3_objects == [DROPPED]

    assert items["m4"].error is not None and "s3" in items["m4"].error
    assert items["m4"].streams == [] and items["m4"].s3_objects == []

    cw = only_stream(items["m5"].streams)
    assert cw.labels["__aws_log_type"] == "cloudwatch" and len(entries(cw)) == 3

    sns = only_stream(items["m6"].streams)
    assert sns.labels == {"__aws_log_type": "sns", "__aws_sns_topic_arn": TOPIC_ARN}
    assert entries(sns) == [(utc_ns(2025, 3, 14, 9, 58, 0, 500_000_000), "plain from SNS")]

    # JSON that is not an event is a line like any other
    assert entries(only_stream(items["m7"].streams)) == [(1741944400100 * 1_000_000, '{"pass": "pass"}')]
    assert items["m8"].s3_objects == [UPLOADED]


def test_sqs_too_deep_nesting_fails_only_that_message() -> None:
    body = "innermost"
    for _ in range(6):
        body = orjson.dumps(sns_envelope(body)).decode()
    result = parse({"Records": [sqs_record("deep", body), sqs_record("ok", "fine")]})
    deep, ok = result.items
    assert deep.error is not None and "nested" in deep.error
    assert ok.error is None and entries(only_stream(ok.streams))[0][1] == "fine"


def test_sqs_without_sent_timestamp_uses_receive_time() -> None:
    rec = sqs_record("m", "text")
    del rec["attributes"]
    result = parse({"Records": [rec]})
    assert entries(only_stream(result.items[0].streams)) == [(RECEIVE_NS, "text")]
    assert result.ts_fallback == 1


# --- EventBridge ------------------------------------------------------------------------------


def test_eventbridge_s3_object_created() -> None:
    result = parse(load("events/eventbridge-s3.json"))
    assert result.kind == EVENTBRIDGE and result.streams == []
    assert result.s3_objects == [DROPPED]


def test_eventbridge_other_events_are_one_json_line() -> None:
    event = {
        "version": "0",
        "id": "5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": ACCOUNT,
        "time": "2025-03-14T10:05:30Z",
        "region": "eu-west-3",
        "resources": [f"arn:aws:ec2:eu-west-3:{ACCOUNT}:instance/i-0a1b2c3d4e5f60718"],
        "detail": {"instance-id": "i-0a1b2c3d4e5f60718", "state": "stopping"},
    }
    result = parse(event)
    stream = only_stream(result.streams)
    assert stream.labels == {
        "__aws_log_type": "eventbridge",
        "__aws_eventbridge_source": "aws.ec2",
        "__aws_eventbridge_detail_type": "EC2 Instance State-change Notification",
    }
    assert entries(stream) == [(utc_ns(2025, 3, 14, 10, 5, 30), orjson.dumps(event).decode())]
    assert "\n" not in entries(stream)[0][1]

    deleted = load("events/eventbridge-s3.json")
    deleted["detail-type"] = "Object Deleted"
    deleted.pop("time")
    result = parse(deleted)
    assert result.s3_objects == []
    assert only_stream(result.streams).labels["__aws_eventbridge_detail_type"] == "Object Deleted"
    assert entries(only_stream(result.streams))[0][0] == RECEIVE_NS and result.ts_fallback == 1


# --- bad events ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        [],
        "text",
        None,
        {},
        {"hello": "world"},
        {"Records": []},
        {"Records": "x"},
        {"Records": [{"eventSource": "aws:dynamodb"}]},
        {"Records": [1]},
        {"awslogs": "x"},
        {"awslogs": {}},
        {"awslogs": {"data": "!!!"}},
        {"awslogs": {"data": base64.b64encode(b"not gzip, not json").decode()}},
        {"awslogs": {"data": base64.b64encode(gzip.compress(b'{"a": 1}')).decode()}},
        {"Records": [{"eventSource": "aws:kinesis"}]},
        {"Records": [{"eventSource": "aws:kinesis", "kinesis": {"data": 5}}]},
        {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}}}]},
        {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}, {"eventSource": "aws:sqs"}]},
        {"Records": [{"eventSource": "aws:sqs", "body": "no message id"}]},
        {"Records": [{"eventSource": "aws:sqs", "messageId": "m"}]},
        {"Records": [{"EventSource": "aws:sns", "Sns": {"TopicArn": "t"}}]},
        {"Records": [{"EventSource": "aws:sns"}]},
        {"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {}}},
        {"detail-type": 5, "source": "aws.ec2", "detail": {}},
    ],
)
def test_bad_events_raise(doc: Any) -> None:
    with pytest.raises(EventError):
        parse(doc)


def test_error_message_is_clear() -> None:
    with pytest.raises(EventError, match="unknown event type"):
        parse({"hello": "world"})
    with pytest.raises(EventError, match="unknown record eventSource 'aws:dynamodb'"):
        parse({"Records": [{"eventSource": "aws:dynamodb"}]})
    no_object = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}}}
    with pytest.raises(EventError, match=r"Records\[0\]\.s3\.object"):
        parse({"Records": [no_object]})


# --- CloudWatch payloads: events and their bounds -----------------------------------------------


def test_cloudwatch_events_and_bounds_agree_with_an_event_by_event_reference() -> None:
    # The payload's events are picked and checked in C passes, which fall back to a loop to name
    # what is wrong: random payloads, some with a bad event, must decode as the plain rules say.
    import random

    from relay.aws.cloudwatch import PayloadError
    from relay.aws.cloudwatch import parse as parse_cloudwatch

    rng = random.Random(5)
    good = ok = 0
    for _ in range(400):
        log_events: list[Any] = []
        for i in range(rng.randint(0, 12)):
            ev: Any = {"id": str(i), "timestamp": rng.randint(-10, 2_000_000_000_000), "message": f"m{i}"}
            if rng.random() < 0.04:
                ev = rng.choice([
                    {**ev, "timestamp": 1.5}, {**ev, "timestamp": "1700000000000"}, {**ev, "timestamp": None},
                    {**ev, "timestamp": True}, {**ev, "message": 7}, {**ev, "message": None}, {"id": "x"},
                    {"timestamp": 5}, ["timestamp", 5], "event", 5,
                ])
            log_events.append(ev)
        doc = {"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "g", "logStream": "s", "logEvents": log_events}
        # The reference: each event in turn, as isinstance sees it (a bool is an int).
        expected: list[tuple[int, str]] = []
        error = ""
        for ev in log_events:
            if not isinstance(ev, dict):
                error = "a log event is not an object"
                break
            if not isinstance(ev.get("timestamp"), int) or not isinstance(ev.get("message"), str):
                error = "a log event lacks an integer timestamp or a string message"
                break
            expected.append((ev["timestamp"], ev["message"]))
        data = orjson.dumps(doc)
        if error:
            with pytest.raises(PayloadError, match=error):
                parse_cloudwatch(data)
            continue
        good += 1
        p = parse_cloudwatch(gzip.compress(data) if rng.random() < 0.5 else data)
        assert p.events == expected and all(type(m) is str for _, m in p.events)
        assert p.times_ms == ((min(t for t, _ in expected), max(t for t, _ in expected)) if expected else None)
        ok += bool(expected)
    assert good > 250 and ok > 200


def test_streams_from_milliseconds_encode_as_from_their_nanoseconds() -> None:
    # CloudWatch events become entries straight from their milliseconds: the same bytes as by way
    # of nanosecond pairs, the same rule for a time beyond int64 (the current time), the same slices.
    import random
    import time

    from relay.model import new_streams, new_streams_ms

    rng = random.Random(6)
    for _ in range(200):
        events = [(rng.choice([rng.randint(0, 2_000_000_000_000), rng.randint(-5_000, 5_000), 9_223_372_036_854,
                               9_223_372_036_855, 10**17]), f"e{i}") for i in range(rng.randint(0, 25))]
        huge = rng.random() < 0.1
        if huge:  # beyond int64 seconds: protobuf refuses it, the fallback replaces what is out of range
            events.append((10**22, "huge"))
        before = time.time_ns()
        got = new_streams_ms({"a": "1"}, events, most=10)
        want = new_streams({"a": "1"}, [(ms * 1_000_000, line) for ms, line in events], most=10)
        after = time.time_ns()
        assert [s.labels for s in got] == [s.labels for s in want] == [{"a": "1"}] * len(want)
        assert len(want) == max(1, -(-len(events) // 10))
        if not huge:
            assert [s.entries.SerializeToString() for s in got] == [s.entries.SerializeToString() for s in want]
            continue
        for g, w in zip(got, want, strict=True):
            for ge, we in zip(g.entries.entries, w.entries.entries, strict=True):
                assert ge.line == we.line
                g_ns = ge.timestamp.seconds * 1_000_000_000 + ge.timestamp.nanos
                w_ns = we.timestamp.seconds * 1_000_000_000 + we.timestamp.nanos
                assert g_ns == w_ns or before <= min(g_ns, w_ns) <= max(g_ns, w_ns) <= after  # both "now"
