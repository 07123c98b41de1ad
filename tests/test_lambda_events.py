"""relay.aws.events: Lambda event payloads -> streams, S3 work items and SQS items."""

from __future__ import annotations

import base64
import copy
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from relay.model import Stream
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

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
AWS = FIXTURES / "aws"
EVENTS = AWS / "events"
RECEIVE_NS = 1_700_000_000_123_456_789

KINESIS_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/simple-stream"
QUEUE_ARN = "arn:aws:sqs:us-west-2:123456789012:SQSQueue"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:log-topic"


def load(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


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
        "owner": "123456789012",
        "logGroup": "/aws/lambda/fn",
        "logStream": "2024/01/01/[$LATEST]abc",
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
        "attributes": {"SentTimestamp": "1520621625029"},
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-west-2",
    }


def sns_envelope(message: str) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC_ARN,
        "Message": message,
        "Timestamp": "2023-08-25T17:41:59.5Z",
        "SignatureVersion": "1",
    }


# --- CloudWatch Logs ----------------------------------------------------------------------


def test_cloudwatch_logs_event() -> None:
    result = parse(load(EVENTS / "cloudwatch-logs-event.json"))
    assert result.kind == CLOUDWATCH and result.s3_objects == [] and result.items == []
    stream = only_stream(result.streams)
    assert stream.labels == {
        "__aws_log_type": "cloudwatch",
        "__aws_cloudwatch_log_group": "testLogGroup",
        "__aws_cloudwatch_owner": "123456789123",
    }
    assert entries(stream) == [
        (1440442987000 * 1_000_000, "[ERROR] First test message"),
        (1440442987001 * 1_000_000, "[ERROR] Second test message"),
    ]
    assert result.ts_fallback == 0


def test_cloudwatch_keep_stream() -> None:
    stream = only_stream(parse(load(EVENTS / "cloudwatch-logs-event.json"), keep_stream=True).streams)
    assert stream.labels["__aws_cloudwatch_log_stream"] == "testLogStream"


def test_cloudwatch_control_message_has_no_entries() -> None:
    data = b64(gzip.compress(orjson.dumps(cloudwatch_payload("CONTROL_MESSAGE", owner="CloudwatchLogs"))))
    result = parse({"awslogs": {"data": data}})
    assert result.kind == CLOUDWATCH and result.streams == [] and result.ignored == 1


# --- Kinesis ------------------------------------------------------------------------------


def test_kinesis_plain_records_are_ingested() -> None:
    result = parse(load(EVENTS / "kinesis-event.json"))
    assert result.kind == KINESIS
    stream = only_stream(result.streams)
    assert stream.labels == {"__aws_log_type": "kinesis", "__aws_kinesis_event_source_arn": KINESIS_ARN}
    assert entries(stream) == [(1480641523_477000000, "Hello World"), (1480841523_477000000, "Hello World")]
    assert result.ts_fallback == 0 and result.skipped == {}


@pytest.mark.parametrize("gz", [True, False])
def test_kinesis_carrying_cloudwatch_payload(gz: bool) -> None:
    payload = (AWS / "kinesis-event.json").read_bytes()
    data = gzip.compress(payload) if gz else payload
    result = parse({"Records": [kinesis_record(data)]})
    stream = only_stream(result.streams)
    assert stream.labels == {
        "__aws_log_type": "kinesis",
        "__aws_kinesis_event_source_arn": KINESIS_ARN,
        "__aws_cloudwatch_log_group": "test-logroup",
        "__aws_cloudwatch_owner": "some_owner",
    }
    assert entries(stream) == [(1719922604969 * 1_000_000, "some_message")] * 3
    kept = only_stream(parse({"Records": [kinesis_record(data)]}, keep_stream=True).streams)
    assert kept.labels["__aws_cloudwatch_log_stream"] == "test-logstream"


def test_kinesis_mixed_records_group_by_labels() -> None:
    other = "arn:aws:kinesis:us-east-1:123456789012:stream/other"
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
            ("__aws_cloudwatch_owner", "123456789012"),
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
    result = parse(load(EVENTS / "s3-event.json"))
    assert result.kind == S3 and result.streams == []
    assert result.s3_objects == [S3Ref("sourcebucket", "Happy Face.jpg", "us-east-1")]


def test_s3_notification_with_generated_tags() -> None:
    result = parse(load(EVENTS / "s3-event-generated-tags.json"))
    assert result.s3_objects == [
        S3Ref(
            "aws-landing-zone-logs-000000000000-eu-central-1",
            "AWSLogs/000000000000/CloudTrail/us-east-1/2026/07/16/example_CloudTrail_us-east-1.json.gz",
            "eu-central-1",
        )
    ]


def test_s3_test_event_is_accepted_and_ignored() -> None:
    result = parse(load(EVENTS / "s3-test-event.json"))
    assert result.kind == S3_TEST and result.streams == [] and result.s3_objects == [] and result.ignored == 1


def test_s3_notification_plus_and_percent_and_other_event_names() -> None:
    doc = load(EVENTS / "s3-event.json")
    rec = doc["Records"][0]
    plus = copy.deepcopy(rec)
    plus["s3"]["object"]["key"] = "my+prefix/a%2Bb%3Dc.log.gz"
    removed = copy.deepcopy(rec)
    removed["eventName"] = "ObjectRemoved:Delete"
    doc["Records"] = [plus, removed]
    result = parse(doc)
    assert result.s3_objects == [S3Ref("sourcebucket", "my prefix/a+b=c.log.gz", "us-east-1")]
    assert result.ignored == 1


# --- SNS, SQS -------------------------------------------------------------------------------


def test_sns_plain_message() -> None:
    result = parse(load(EVENTS / "sns-event.json"))
    assert result.kind == SNS
    stream = only_stream(result.streams)
    assert stream.labels == {"__aws_log_type": "sns", "__aws_sns_topic_arn": "arn:aws:sns:EXAMPLE"}
    assert entries(stream) == [(1433353407_123000000, "Hello from SNS!")]


def test_sns_carrying_s3_notification() -> None:
    doc = load(EVENTS / "sns-event.json")
    doc["Records"][0]["Sns"]["Message"] = (EVENTS / "s3-event.json").read_text()
    result = parse(doc)
    assert result.kind == SNS and result.streams == []
    assert result.s3_objects == [S3Ref("sourcebucket", "Happy Face.jpg", "us-east-1")]


def test_top_level_sns_envelope() -> None:
    result = parse(sns_envelope("hello"))
    assert result.kind == SNS
    assert entries(only_stream(result.streams)) == [(1692985319_500000000, "hello")]


def test_sqs_plain_body() -> None:
    result = parse(load(EVENTS / "sqs-event.json"))
    assert result.kind == SQS and result.streams == [] and result.s3_objects == []
    (item,) = result.items
    assert item.message_id == "MessageID_1" and item.error is None and item.s3_objects == []
    stream = only_stream(item.streams)
    assert stream.labels == {"__aws_log_type": "sqs", "__aws_sqs_queue_arn": QUEUE_ARN}
    assert entries(stream) == [(1520621625029 * 1_000_000, "Message Body")]


def test_sqs_wrapping_sns_wrapping_s3_and_other_bodies() -> None:
    s3_event = (EVENTS / "s3-event.json").read_text()
    broken_s3 = orjson.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}).decode()
    cw_event = (EVENTS / "cloudwatch-logs-event.json").read_text()
    doc = {
        "Records": [
            sqs_record("m1", orjson.dumps(sns_envelope(s3_event)).decode()),
            sqs_record("m2", "just some text"),
            sqs_record("m3", (AWS / "eventbridge-s3-event.json").read_text()),
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

    assert items["m1"].s3_objects == [S3Ref("sourcebucket", "Happy Face.jpg", "us-east-1")]
    assert items["m1"].streams == [] and items["m1"].error is None

    assert [(s.labels, entries(s)) for s in items["m2"].streams] == [
        ({"__aws_log_type": "sqs", "__aws_sqs_queue_arn": QUEUE_ARN}, [(1520621625029 * 1_000_000, "just some text")])
    ]
    assert items["m3"].s3_objects == [S3Ref("bucket", "pizza.txt", "us-east-2")]

    assert items["m4"].error is not None and "s3" in items["m4"].error
    assert items["m4"].streams == [] and items["m4"].s3_objects == []

    cw = only_stream(items["m5"].streams)
    assert cw.labels["__aws_log_type"] == "cloudwatch" and len(entries(cw)) == 2

    sns = only_stream(items["m6"].streams)
    assert sns.labels == {"__aws_log_type": "sns", "__aws_sns_topic_arn": TOPIC_ARN}
    assert entries(sns) == [(1692985319_500000000, "plain from SNS")]

    # JSON that is not an event is a line like any other
    assert entries(only_stream(items["m7"].streams)) == [(1520621625029 * 1_000_000, '{"pass": "pass"}')]
    assert items["m8"].s3_objects == [S3Ref("sourcebucket", "Happy Face.jpg", "us-east-1")]


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
    result = parse(load(AWS / "eventbridge-s3-event.json"))
    assert result.kind == EVENTBRIDGE and result.streams == []
    assert result.s3_objects == [S3Ref("bucket", "pizza.txt", "us-east-2")]


def test_eventbridge_other_events_are_one_json_line() -> None:
    event = {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2015-11-11T21:29:54Z",
        "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
        "detail": {"instance-id": "i-abcd1111", "state": "pending"},
    }
    result = parse(event)
    stream = only_stream(result.streams)
    assert stream.labels == {
        "__aws_log_type": "eventbridge",
        "__aws_eventbridge_source": "aws.ec2",
        "__aws_eventbridge_detail_type": "EC2 Instance State-change Notification",
    }
    assert entries(stream) == [(1447277394_000000000, orjson.dumps(event).decode())]
    assert "\n" not in entries(stream)[0][1]

    deleted = load(AWS / "eventbridge-s3-event.json")
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
