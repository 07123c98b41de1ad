"""Cross-check on real AWS payloads: the decoders against ../shared/fixtures (see its README.md).

Collected only where that folder exists (tests/conftest.py; RELAY_SHARED_FIXTURES points elsewhere),
so a clone alone runs on the project's own payloads (tests/payloads) and CI, which has the folder,
runs this module too. The decoders are called in-process: the point is the formats, not the relay.
"""

from __future__ import annotations

import base64
import calendar
import gzip
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from relay.aws import s3logs
from relay.aws.events import CLOUDWATCH, EVENTBRIDGE, KINESIS, S3, S3_TEST, SNS, SQS, S3Ref, parse_event
from relay.aws.firehose import parse_request
from tests.conftest import SHARED_FIXTURES

AWS = SHARED_FIXTURES / "aws"
EVENTS = AWS / "events"
FIREHOSE = SHARED_FIXTURES / "firehose"
RECEIVE_NS = 1_700_000_000_123_456_789

# The example keys of the fixtures' README, one per object.
OBJECTS: dict[str, tuple[str, str, str | None, str | None]] = {  # file -> (key, log type, source, owner)
    "albaccesslog.log.gz": (
        "my-bucket/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2022/01/24/123456789012_elasticloadbalancing_"
        "us-east-1_app.my-loadbalancer.b13ea9d19f16d015_20220124T0000Z_0.0.0.0_2et2e1mx.log.gz",
        s3logs.LB, "my-loadbalancer", "123456789012"),
    "nlbaccesslog.log.gz": (
        "my-bucket/prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/123456789012_"
        "elasticloadbalancing_us-east-2_net.my-loadbalancer.1234567890abcdef_201605010000Z_2soosksi.log.gz",
        s3logs.LB, "my-loadbalancer", "123456789012"),
    "vpcflowlog.log.gz": (
        "my-bucket/AWSLogs/123456789012/vpcflowlogs/us-east-1/2022/01/24/"
        "123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz",
        s3logs.VPC_FLOW, "fl-1234abcd", "123456789012"),
    "cloudtrail-log-file.json.gz": (
        "my-bucket/AWSLogs/123456789012/CloudTrail/us-east-1/2022/01/24/"
        "123456789012_CloudTrail_us-east-1_20220124T0000Z_4jhzXFO2Jlvu2b3y.json.gz",
        s3logs.CLOUDTRAIL, "4jhzXFO2Jlvu2b3y", "123456789012"),
    "cloudfront.log.gz": ("my/bucket/prefix/E2K2LNL5N3WR51.2022-07-18-12.a10a8496.gz", s3logs.CLOUDFRONT,
                          "E2K2LNL5N3WR51", "my/bucket/prefix"),
    "waflog.log.gz": (
        "prefix/AWSLogs/11111111111/WAFLogs/us-east-1/TEST-WEBACL/2021/10/28/19/50/"
        "11111111111_waflogs_us-east-1_TEST-WEBACL_20211028T1950Z_e0ca43b5.log.gz",
        s3logs.WAF, "TEST-WEBACL", "11111111111"),
    "msklog.log.gz": (
        "prefix/AWSLogs/111111111111/KafkaBrokerLogs/eu-south-2/msk-test-name-7f6b9b77-24f9-4921-87b6-d29a6401e292-3/"
        "2025-07-04-11/Broker-1_11-55_cab960bb.log.gz",
        s3logs.MSK, "msk-test-name-7f6b9b77-24f9-4921-87b6-d29a6401e292-3", "111111111111"),
    "s3accesslog.log": (
        "123456789012/us-east-1/amzn-s3-demo-source-bucket/2023/03/01/2023-03-01-21-32-16-E568B2907131C0C0",
        s3logs.S3_ACCESS, "amzn-s3-demo-source-bucket", "123456789012"),
}


def utc_ns(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ns: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1_000_000_000 + ns


def text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()


def read(name: str) -> tuple[list[tuple[int, str]], s3logs.S3Stats]:
    key, log_type, src, owner = OBJECTS[name]
    obj = s3logs.classify("b", key)
    assert obj.log_type == log_type and not obj.skip
    assert obj.labels.get(f"__aws_{log_type}") == src and obj.labels.get(f"__aws_{log_type}_owner") == owner
    stats = s3logs.S3Stats()
    data = (AWS / name).read_bytes()
    entries = [e for c in s3logs.read_entries(obj, io.BytesIO(data), RECEIVE_NS, stats=stats) for e in c]
    return entries, stats


def ts(entries: list[tuple[int, str]]) -> list[int]:
    return [t for t, _ in entries]


# --- S3 objects ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count", "skipped"),
    [
        ("albaccesslog.log.gz", 2, 0),
        ("nlbaccesslog.log.gz", 2, 0),
        ("vpcflowlog.log.gz", 3, 1),  # the column-header line
        ("cloudtrail-log-file.json.gz", 2, 0),
        ("cloudfront.log.gz", 2, 2),  # #Version and #Fields
        ("waflog.log.gz", 1, 0),
        ("msklog.log.gz", 2, 0),
        ("s3accesslog.log", 1, 0),
    ],
)
def test_s3_object(name: str, count: int, skipped: int) -> None:
    entries, stats = read(name)
    assert len(entries) == count and stats.skipped == skipped and stats.ts_fallback == 0
    if name != "cloudtrail-log-file.json.gz":  # line formats: every kept line as delivered
        lines = [line for line in text(AWS / name).splitlines() if line and not line.startswith("#")]
        assert [line for _, line in entries] == lines[skipped if name == "vpcflowlog.log.gz" else 0:]


def test_s3_timestamps() -> None:
    assert ts(read("albaccesslog.log.gz")[0]) == [utc_ns(2022, 12, 6, 17, 42, 16, 176_563_000),
                                                 utc_ns(2022, 12, 6, 17, 42, 19, 86_095_000)]
    assert ts(read("nlbaccesslog.log.gz")[0]) == [utc_ns(2018, 12, 20, 2, 59, 40), utc_ns(2020, 4, 1, 8, 51, 42)]
    assert ts(read("vpcflowlog.log.gz")[0]) == [1669842701 * 10**9, 1669842701 * 10**9, 1669842715 * 10**9]
    assert ts(read("cloudtrail-log-file.json.gz")[0]) == [utc_ns(2023, 5, 19, 7, 44, 30),
                                                         utc_ns(2023, 5, 19, 7, 44, 34)]
    assert ts(read("cloudfront.log.gz")[0]) == [utc_ns(2023, 4, 26, 7, 25, 11)] * 2
    assert ts(read("waflog.log.gz")[0]) == [utc_ns(2023, 8, 31, 4, 57, 42, 729_000_000)]
    assert ts(read("msklog.log.gz")[0]) == [utc_ns(2025, 7, 4, 11, 57, 55, 836_000_000),
                                           utc_ns(2025, 7, 4, 11, 57, 55, 839_000_000)]
    assert ts(read("s3accesslog.log")[0]) == [utc_ns(2019, 2, 6, 0, 0, 38)]


def test_cloudtrail_records_become_compact_json_lines() -> None:
    entries, _ = read("cloudtrail-log-file.json.gz")
    records = orjson.loads(text(AWS / "cloudtrail-log-file.json.gz"))["Records"]
    assert [line for _, line in entries] == [orjson.dumps(r).decode() for r in records]
    assert '"eventName":"AssumeRole"' in entries[0][1] and '"eventName":"BatchGetImage"' in entries[1][1]


def test_cloudtrail_digest_key_is_skipped() -> None:
    key = OBJECTS["cloudtrail-log-file.json.gz"][0].replace("CloudTrail", "CloudTrail-Digest")
    obj = s3logs.classify("b", key)
    assert obj.skip
    body = io.BytesIO((AWS / "cloudtrail-log-file.json.gz").read_bytes())
    assert list(s3logs.read_entries(obj, body, RECEIVE_NS)) == []


# --- Lambda events -----------------------------------------------------------------------------


def event(path: Path) -> Any:
    return parse_event(orjson.loads(path.read_bytes()), receive_ns=RECEIVE_NS)


def lines(streams: list[Any]) -> list[tuple[int, str]]:
    return [(e.timestamp.seconds * 10**9 + e.timestamp.nanos, e.line) for s in streams for e in s.entries.entries]


def test_cloudwatch_logs_event() -> None:
    result = event(EVENTS / "cloudwatch-logs-event.json")
    assert result.kind == CLOUDWATCH
    [stream] = result.streams
    assert stream.labels == {"__aws_log_type": "cloudwatch", "__aws_cloudwatch_log_group": "testLogGroup",
                             "__aws_cloudwatch_owner": "123456789123"}
    assert lines(result.streams) == [(1440442987000 * 10**6, "[ERROR] First test message"),
                                     (1440442987001 * 10**6, "[ERROR] Second test message")]


def test_kinesis_events() -> None:
    result = event(EVENTS / "kinesis-event.json")
    assert result.kind == KINESIS
    assert lines(result.streams) == [(1480641523_477000000, "Hello World"), (1480841523_477000000, "Hello World")]
    # the decoded CloudWatch payload, wrapped as a Kinesis record would carry it
    payload = (AWS / "kinesis-event.json").read_bytes()
    for data in (payload, gzip.compress(payload)):
        record = {"eventSource": "aws:kinesis", "eventSourceARN": "arn:aws:kinesis:us-east-1:1:stream/s",
                  "kinesis": {"data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": 1.0}}
        result = parse_event({"Records": [record]}, receive_ns=RECEIVE_NS)
        [stream] = result.streams
        assert stream.labels["__aws_cloudwatch_log_group"] == "test-logroup"
        assert stream.labels["__aws_cloudwatch_owner"] == "some_owner"
        assert lines(result.streams) == [(1719922604969 * 10**6, "some_message")] * 3


def test_s3_events() -> None:
    result = event(EVENTS / "s3-event.json")
    assert result.kind == S3 and result.s3_objects == [S3Ref("sourcebucket", "Happy Face.jpg", "us-east-1")]
    result = event(EVENTS / "s3-event-generated-tags.json")
    assert result.s3_objects == [S3Ref(
        "aws-landing-zone-logs-000000000000-eu-central-1",
        "AWSLogs/000000000000/CloudTrail/us-east-1/2026/07/16/example_CloudTrail_us-east-1.json.gz",
        "eu-central-1",
    )]
    assert s3logs.classify("b", result.s3_objects[0].key).log_type == s3logs.CLOUDTRAIL
    result = event(EVENTS / "s3-test-event.json")
    assert result.kind == S3_TEST and result.streams == [] and result.s3_objects == [] and result.ignored == 1


def test_sns_sqs_and_eventbridge_events() -> None:
    result = event(EVENTS / "sns-event.json")
    assert result.kind == SNS
    assert result.streams[0].labels == {"__aws_log_type": "sns", "__aws_sns_topic_arn": "arn:aws:sns:EXAMPLE"}
    assert lines(result.streams) == [(1433353407_123000000, "Hello from SNS!")]
    result = event(EVENTS / "sqs-event.json")
    assert result.kind == SQS
    [item] = result.items
    assert item.message_id == "MessageID_1" and item.error is None
    assert lines(item.streams) == [(1520621625029 * 10**6, "Message Body")]
    result = event(AWS / "eventbridge-s3-event.json")
    assert result.kind == EVENTBRIDGE and result.s3_objects == [S3Ref("bucket", "pizza.txt", "us-east-2")]


# --- Firehose bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(
    ("name", "records", "entries", "controls", "skipped"),
    [
        ("direct_put.json", 3, 3, 0, {}),
        ("direct_put_with_non_json_message.json", 1, 1, 0, {}),
        ("cw_logs_mixed.json", 2, 13, 1, {}),
        ("cw_logs_with_only_control_messages.json", 1, 0, 1, {}),
        ("cw_logs_with_only_data_messages.json", 1, 13, 0, {}),
        ("cw_logs_control_and_bad_records.json", 2, 0, 1, {"base64-decode": 1}),
    ],
)
def test_firehose_body(name: str, records: int, entries: int, controls: int, skipped: dict[str, int],
                       gz: bool) -> None:
    body = (FIREHOSE / name).read_bytes()
    headers = {"X-Amz-Firehose-Source-Arn": "arn:aws:firehose:us-east-2:1:deliverystream/s"}
    if gz:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    b = parse_request(body, headers, receive_ns=RECEIVE_NS, use_incoming_timestamp=False, max_size=1 << 20)
    assert (b.records, b.entries, b.control_messages, b.skipped) == (records, entries, controls, skipped)
    assert b.request_id == json.loads((FIREHOSE / name).read_bytes())["requestId"]
    got = [line for _, line in lines(b.streams)]
    assert not any("CWL CONTROL MESSAGE" in line for line in got)
    if name == "cw_logs_mixed.json":
        [stream] = b.streams
        assert stream.labels["__aws_cw_log_group"] == "/aws/lambda/logging-lambda"
        assert got[0].startswith("INIT_START Runtime Version: nodejs:18.v6")
        assert got[-1].startswith("REPORT RequestId: 921a2a6d-5bd1-4797-8400-4688494b664b")
    if name == "direct_put_with_non_json_message.json":
        assert got == ["hola esto es una prueba"]
