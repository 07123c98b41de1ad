"""relay.aws.s3logs: key classification and streaming parsing of AWS logs stored in S3."""

from __future__ import annotations

import calendar
import gzip
import io
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.aws import s3logs
from relay.aws.s3 import open_object
from relay.aws.s3logs import (
    CLOUDFRONT,
    CLOUDTRAIL,
    GUARDDUTY,
    LB,
    MSK,
    S3_ACCESS,
    UNKNOWN,
    VPC_FLOW,
    WAF,
    ObjectTooLarge,
    S3LogError,
    S3Stats,
    classify,
    read_entries,
)
from relay.times import iso_ns, unix_digits_ns
from tests import payloads
from tests.payloads import ACCOUNT, KEYS, OBJECT_FILES, s3_object

RECEIVE_NS = 1_700_000_000_123_456_789

# The keys our payloads are delivered under (tests/payloads/__init__.py).
ALB_KEY = KEYS["alb"]
NLB_KEY = KEYS["nlb"]
VPC_KEY = KEYS["vpc"]
CLOUDTRAIL_KEY = KEYS["cloudtrail"]
CLOUDFRONT_KEY = KEYS["cloudfront"]
WAF_KEY = KEYS["waf"]
MSK_KEY = KEYS["msk"]
S3_ACCESS_KEY = KEYS["s3_access"]
GUARDDUTY_KEY = KEYS["guardduty"]
ACCT = ACCOUNT
MSK_CLUSTER = "orders-cluster-2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091-2"


def utc_ns(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ns: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1_000_000_000 + ns


def fixture_bytes(name: str) -> bytes:
    return s3_object(name)


def fixture_text(name: str) -> str:
    return payloads.text(OBJECT_FILES[name])


def read_all(obj: s3logs.S3Object, data: bytes, **kw: Any) -> tuple[list[tuple[int, str]], S3Stats]:
    stats = S3Stats()
    entries = [e for chunk in read_entries(obj, io.BytesIO(data), RECEIVE_NS, stats=stats, **kw) for e in chunk]
    assert stats.entries == len(entries)
    return entries, stats


# --- classification ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "log_type", "src", "owner"),
    [
        (ALB_KEY, LB, "shop-frontend", ACCT),
        (NLB_KEY, LB, "payments-nlb", ACCT),
        (VPC_KEY, VPC_FLOW, "fl-0e1d2c3b4a5f6e7d8", ACCT),
        (CLOUDTRAIL_KEY, CLOUDTRAIL, "Vb7Lq2Xw9Rt4Kp1M", ACCT),
        (CLOUDTRAIL_KEY.replace("AWSLogs/", "AWSLogs/o-k2m4p6r8t0/"), CLOUDTRAIL, "Vb7Lq2Xw9Rt4Kp1M", ACCT),  # org trail
        (CLOUDFRONT_KEY, CLOUDFRONT, "E3ZK7EXAMPLE9Q", "cdn-logs"),
        (WAF_KEY, WAF, "shop-acl", ACCT),
        (MSK_KEY, MSK, MSK_CLUSTER, ACCT),
        (S3_ACCESS_KEY, S3_ACCESS, "relay-test-assets", ACCT),
        (GUARDDUTY_KEY, GUARDDUTY, None, ACCT),
        # GovCloud regions
        (VPC_KEY.replace("eu-west-3", "us-gov-east-1"), VPC_FLOW, "fl-0e1d2c3b4a5f6e7d8", ACCT),
        (WAF_KEY.replace("eu-west-3", "us-gov-east-1"), WAF, "shop-acl", ACCT),
        # keys lambda-promtail does not recognise
        (
            "b/AWSLogs/345678901234/vpcflowlogs/ap-southeast-2/2025/03/14/13/"
            "345678901234_vpcflowlogs_ap-southeast-2_fl-07a6b5c4d3e2_20250314T1305Z_0a1b2c3d.log.gz",
            VPC_FLOW,
            "fl-07a6b5c4d3e2",
            "345678901234",
        ),
        (
            "AWSLogs/aws-account-id=345678901234/aws-service=vpcflowlogs/aws-region=eu-north-1/year=2025/month=03/"
            "day=14/hour=13/345678901234_vpcflowlogs_eu-north-1_fl-0f9e8d7c_20250314T1305Z_0a1b2c3d.log.gz",
            VPC_FLOW,
            "fl-0f9e8d7c",
            "345678901234",
        ),
        (
            "lb-logs/AWSLogs/345678901234/elasticloadbalancing/ca-central-1/2025/03/14/conn_log_345678901234_"
            "elasticloadbalancing_ca-central-1_app.intranet-alb.0f1e2d3c4b5a6978_20250314T1340Z_192.0.2.10_"
            "p0o9i8u7.log.gz",
            LB,
            "intranet-alb",
            "345678901234",
        ),
        (
            "hc/AWSLogs/345678901234/elasticloadbalancing/ca-central-1/2025/03/14/health_check_log_345678901234_"
            "elasticloadbalancing_ca-central-1_app.intranet-alb.0f1e2d3c4b5a6978_20250314T1340Z_10.9.1.2_a1s2d3f4.log.gz",
            LB,
            "intranet-alb",
            "345678901234",
        ),
        (
            "AWSLogs/345678901234/elasticloadbalancing/sa-east-1/2025/03/14/"
            "345678901234_elasticloadbalancing_sa-east-1_legacy-classic-lb_20250314T1340Z_192.0.2.10_z9x8c7v6.log",
            LB,
            "legacy-classic-lb",
            "345678901234",
        ),
        (
            "AWSLogs/345678901234/CloudTrail/eu-west-3/2025/03/14/trail-export_CloudTrail_eu-west-3.json.gz",
            CLOUDTRAIL,
            None,
            "345678901234",
        ),
        ("E3ZK7EXAMPLE9Q.2025-03-14-09.5f6e7d8c.gz", CLOUDFRONT, "E3ZK7EXAMPLE9Q", None),
        ("logs/345678901234/eu-west-3/my.dotted.bucket/2025/03/14/2025-03-14-09-31-15-3C4D5E6F7A8B9C0D", S3_ACCESS,
         "my.dotted.bucket", "345678901234"),
        ("access-logs/2025-03-14-09-31-15-3C4D5E6F7A8B9C0D", S3_ACCESS, None, None),
        # unknown
        (KEYS["unknown"], UNKNOWN, None, None),
        ("some-object.json", UNKNOWN, None, None),
        ("AWSLogs/345678901234/vpcflowlogs/eu-west-3/2025/03/14/end-of-filename.log.gz", UNKNOWN, None, None),
        ("", UNKNOWN, None, None),
    ],
)
def test_classify(key: str, log_type: str, src: str | None, owner: str | None) -> None:
    obj = classify("the-bucket", key)
    assert obj.log_type == log_type
    assert obj.bucket == "the-bucket" and obj.key == key and not obj.skip
    expected = {"__aws_log_type": log_type, "__aws_s3_bucket": "the-bucket", "__aws_s3_key": key}
    if src is not None:
        expected[f"__aws_{log_type}"] = src
    if owner is not None:
        expected[f"__aws_{log_type}_owner"] = owner
    assert obj.labels == expected


def test_classify_label_names_are_lambda_promtails() -> None:
    assert set(classify("b", ALB_KEY).labels) == {
        "__aws_log_type", "__aws_s3_lb", "__aws_s3_lb_owner", "__aws_s3_bucket", "__aws_s3_key"
    }
    assert set(classify("b", VPC_KEY).labels) >= {"__aws_s3_vpc_flow", "__aws_s3_vpc_flow_owner"}
    assert set(classify("b", CLOUDTRAIL_KEY).labels) >= {"__aws_s3_cloudtrail", "__aws_s3_cloudtrail_owner"}
    assert set(classify("b", CLOUDFRONT_KEY).labels) >= {"__aws_s3_cloudfront", "__aws_s3_cloudfront_owner"}
    assert set(classify("b", WAF_KEY).labels) >= {"__aws_s3_waf", "__aws_s3_waf_owner"}
    assert set(classify("b", MSK_KEY).labels) >= {"__aws_s3_msk", "__aws_s3_msk_owner"}
    assert set(classify("b", S3_ACCESS_KEY).labels) >= {"__aws_s3_access", "__aws_s3_access_owner"}
    assert "__aws_s3_guardduty_owner" in classify("b", GUARDDUTY_KEY).labels


def test_cloudtrail_digest_is_skipped() -> None:
    obj = classify("b", KEYS["cloudtrail_digest"])
    assert obj.log_type == CLOUDTRAIL and obj.skip
    assert "digestStartTime" in fixture_text("cloudtrail_digest")  # a real digest document, not a log
    entries, stats = read_all(obj, fixture_bytes("cloudtrail_digest"))
    assert entries == [] and stats.bytes == 0
    # a log file under a digest key is not read either: the key decides
    assert read_all(obj, fixture_bytes("cloudtrail"))[0] == []


# --- each fixture: lines and timestamps ----------------------------------------------------


def check_lines(entries: list[tuple[int, str]], expected_lines: list[str]) -> None:
    assert [line for _, line in entries] == expected_lines


def test_alb() -> None:
    entries, stats = read_all(classify("b", ALB_KEY), fixture_bytes("alb"))
    check_lines(entries, fixture_text("alb").splitlines())
    assert len(entries) == 3
    assert entries[0][1].startswith("https 2025-03-14T09:04:58.120934Z app/shop-frontend/7c1e9a2b3d4f5061 ")
    assert entries[-1][1].startswith("h2 2025-03-14T09:05:07.650001Z app/shop-frontend/7c1e9a2b3d4f5061 ")
    # field 2 (the response time), not the later request_creation_time
    assert [ts for ts, _ in entries] == [
        utc_ns(2025, 3, 14, 9, 4, 58, 120_934_000),
        utc_ns(2025, 3, 14, 9, 5, 1, 4_417_000),
        utc_ns(2025, 3, 14, 9, 5, 7, 650_001_000),
    ]
    assert entries[0][0] == 1_741_943_098_120_934_000
    assert stats.ts_fallback == 0 and stats.skipped == 0


def test_nlb_time_without_zone_is_utc() -> None:
    entries, stats = read_all(classify("b", NLB_KEY), fixture_bytes("nlb"))
    check_lines(entries, fixture_text("nlb").splitlines())
    assert entries[0][1].startswith("tls 2.0 2025-03-14T09:10:02 net/payments-nlb/")
    # the line ends in the TLS connection creation time (09:09:59): the first time (field 3) is the one used
    assert entries[0][1].endswith(' h2 h2 "h2","http/1.1" 2025-03-14T09:09:59')
    assert [ts for ts, _ in entries] == [utc_ns(2025, 3, 14, 9, 10, 2), utc_ns(2025, 3, 14, 9, 10, 15)]
    assert stats.ts_fallback == 0


def test_vpc_flow_uses_start_and_skips_header() -> None:
    entries, stats = read_all(classify("b", VPC_KEY), fixture_bytes("vpc"))
    lines = fixture_text("vpc").splitlines()
    assert lines[0].startswith("version account-id")
    check_lines(entries, lines[1:])
    assert len(entries) == 3
    assert entries[0][1] == (
        "2 210987654321 eni-0c1d2e3f4a5b6c7d8 10.40.2.17 10.40.9.3 44210 5432 6 12 4087 "
        "1741943101 1741943159 ACCEPT OK"
    )
    assert entries[-1][1] == "2 210987654321 eni-0d2e3f4a5b6c7d8e9 - - - - - - - 1741943161 1741943220 - NODATA"
    assert [ts for ts, _ in entries] == [1741943101 * 10**9, 1741943104 * 10**9, 1741943161 * 10**9]
    assert stats.skipped == 1 and stats.ts_fallback == 0


def test_vpc_flow_custom_format_header_and_nodata() -> None:
    text = (
        "account-id action start end log-status\n"
        "210987654321 ACCEPT 1741943101 1741943159 OK\n"
        "210987654321 - 1741943200 1741943260 NODATA\n"
        "210987654321 ACCEPT - - SKIPDATA\n"
    )
    entries, stats = read_all(classify("b", VPC_KEY), text.encode())
    assert [ts for ts, _ in entries] == [1741943101 * 10**9, 1741943200 * 10**9, RECEIVE_NS]
    assert stats.ts_fallback == 1 and stats.skipped == 1
    # without a header line, the first record is kept and `start` is the default version-2 column
    records = "\n".join(fixture_text("vpc").splitlines()[1:])
    entries, stats = read_all(classify("b", VPC_KEY), records.encode())
    assert len(entries) == 3 and stats.skipped == 0 and entries[0][0] == 1741943101 * 10**9


def test_cloudtrail_one_compact_json_line_per_record() -> None:
    entries, stats = read_all(classify("b", CLOUDTRAIL_KEY), fixture_bytes("cloudtrail"))
    records = orjson.loads(fixture_text("cloudtrail"))["Records"]
    assert fixture_text("cloudtrail").count("\n") > 100  # pretty-printed over many lines
    assert len(entries) == 3
    assert [line for _, line in entries] == [orjson.dumps(r).decode() for r in records]
    assert entries[0][1].startswith('{"eventVersion":"1.09","userIdentity":{"type":"IAMUser"')
    assert '"eventName":"CreateBucket"' in entries[0][1] and "\n" not in entries[0][1]
    assert '"eventName":"AssumeRole"' in entries[1][1]
    assert '"eventName":"DescribeInstances"' in entries[-1][1]
    assert entries[-1][1].endswith('"recipientAccountId":"210987654321","eventCategory":"Management"}')
    assert [ts for ts, _ in entries] == [
        utc_ns(2025, 3, 14, 8, 59, 12),
        utc_ns(2025, 3, 14, 9, 1, 40),
        utc_ns(2025, 3, 14, 9, 3, 5, 250_000_000),
    ]
    assert stats.ts_fallback == 0


def test_cloudtrail_errors_and_limits() -> None:
    obj = classify("b", CLOUDTRAIL_KEY)
    with pytest.raises(ObjectTooLarge, match="larger than 1000 bytes"):
        read_all(obj, fixture_bytes("cloudtrail"), max_bytes=1000)
    with pytest.raises(S3LogError, match="not JSON"):
        read_all(obj, gzip.compress(b'{"Records": ['))
    with pytest.raises(S3LogError, match="Records"):
        read_all(obj, b'{"records": []}')
    entries, stats = read_all(obj, b'{"Records": [{"eventTime": "bad"}, {"eventTime": "2025-03-14T09:01:40.5Z"}, 3]}')
    assert entries == [
        (RECEIVE_NS, '{"eventTime":"bad"}'),
        (utc_ns(2025, 3, 14, 9, 1, 40, 500_000_000), '{"eventTime":"2025-03-14T09:01:40.5Z"}'),
        (RECEIVE_NS + 1, "3"),
    ]
    assert stats.ts_fallback == 2
    body = io.BytesIO(fixture_bytes("cloudtrail"))
    chunks = list(read_entries(obj, body, RECEIVE_NS, chunk_lines=1))
    assert [len(c) for c in chunks] == [1, 1, 1]


def test_cloudfront_skips_headers_and_reads_last_line_without_newline() -> None:
    text = fixture_text("cloudfront")
    assert not text.endswith("\n")
    entries, stats = read_all(classify("b", CLOUDFRONT_KEY), fixture_bytes("cloudfront"))
    lines = text.splitlines()
    assert lines[0].startswith("#Version") and lines[1].startswith("#Fields")
    check_lines(entries, lines[2:])
    assert len(entries) == 3
    assert entries[0][1].startswith("2025-03-14\t09:12:30\tCDG52-P3\t48211\t198.51.100.24\tGET\t")
    assert entries[-1][1].startswith("2025-03-14\t09:13:02\tFRA56-P1\t1024\t")
    assert entries[-1][1] == lines[-1]
    assert [ts for ts, _ in entries] == [
        utc_ns(2025, 3, 14, 9, 12, 30),
        utc_ns(2025, 3, 14, 9, 12, 31),
        utc_ns(2025, 3, 14, 9, 13, 2),
    ]
    assert stats.skipped == 2 and stats.ts_fallback == 0


def test_waf_epoch_ms() -> None:
    entries, stats = read_all(classify("b", WAF_KEY), fixture_bytes("waf"))
    check_lines(entries, fixture_text("waf").splitlines())
    assert len(entries) == 2
    assert entries[0][1].startswith('{"timestamp":1741943590412,"formatVersion":1,"webaclId":"arn:aws:wafv2:')
    assert entries[0][0] == 1_741_943_590_412_000_000 == utc_ns(2025, 3, 14, 9, 13, 10, 412_000_000)
    assert entries[1][0] == utc_ns(2025, 3, 14, 9, 13, 14, 7_000_000)
    assert stats.ts_fallback == 0


def test_msk_log4j_time_and_crlf() -> None:
    raw = fixture_text("msk")
    assert "\r\n" in raw and not raw.endswith("\n")
    entries, stats = read_all(classify("b", MSK_KEY), fixture_bytes("msk"))
    assert entries == [
        (
            utc_ns(2025, 3, 14, 9, 20, 1, 17_000_000),
            "[2025-03-14 09:20:01,017] INFO [GroupCoordinator 2]: Preparing to rebalance group orders-consumers "
            "(kafka.coordinator.group.GroupCoordinator)",
        ),
        (
            utc_ns(2025, 3, 14, 9, 20, 1, 233_000_000),
            "[2025-03-14 09:20:01,233] INFO [Partition orders-7 broker=2] Log loaded for partition orders-7 with "
            "initial high watermark 88231 (kafka.cluster.Partition)",
        ),
        (
            utc_ns(2025, 3, 14, 9, 20, 4, 902_000_000),
            "[2025-03-14 09:20:04,902] WARN [ReplicaFetcher replicaId=2, leaderId=1, fetcherId=0] Connection to "
            "node 1 was disconnected (org.apache.kafka.clients.NetworkClient)",
        ),
    ]
    assert stats.ts_fallback == 0


def test_s3_access_log_plain_and_gzip() -> None:
    data = fixture_bytes("s3_access")
    assert data[:2] != b"\x1f\x8b"
    obj = classify("b", S3_ACCESS_KEY)
    entries, stats = read_all(obj, data)
    assert len(entries) == 2
    assert [line for _, line in entries] == data.decode().splitlines()
    assert entries[0][1].startswith(
        "8d1f7a3c5e9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f relay-test-assets "
        "[14/Mar/2025:09:31:07 +0000] "
    )
    assert entries[-1][1].endswith("relay-test-assets.s3.eu-west-3.amazonaws.com - - -")
    assert [ts for ts, _ in entries] == [utc_ns(2025, 3, 14, 9, 31, 7), utc_ns(2025, 3, 14, 9, 31, 9)]
    assert read_all(obj, gzip.compress(data))[0] == entries
    assert stats.bytes == len(data)


def test_s3_access_time_offset() -> None:
    line = "owner bucket [06/Feb/2019:02:30:38 +0230] 192.0.2.3 - REST.GET.OBJECT"
    entries, _ = read_all(classify("b", S3_ACCESS_KEY), line.encode())
    assert entries == [(utc_ns(2019, 2, 6, 0, 0, 38), line)]


def test_guardduty_updated_at() -> None:
    findings = [
        {"id": "a", "createdAt": "2024-05-30T07:00:00.000Z", "updatedAt": "2024-05-30T07:12:34.567Z"},
        {"id": "b", "resource": {"updatedAt": "1999-01-01T00:00:00Z"}, "updatedAt": "2024-05-31T00:00:00Z"},
        {"id": "c"},
    ]
    text = "\n".join(orjson.dumps(f).decode() for f in findings) + "\nnot json\n"
    entries, stats = read_all(classify("b", GUARDDUTY_KEY), gzip.compress(text.encode()))
    assert [ts for ts, _ in entries] == [
        utc_ns(2024, 5, 30, 7, 12, 34, 567_000_000),
        utc_ns(2024, 5, 31),
        RECEIVE_NS,
        RECEIVE_NS + 1,
    ]
    assert entries[0][1] == orjson.dumps(findings[0]).decode()
    assert stats.ts_fallback == 2


def test_guardduty_payload() -> None:
    entries, stats = read_all(classify("b", GUARDDUTY_KEY), fixture_bytes("guardduty"))
    check_lines(entries, fixture_text("guardduty").splitlines())  # delivered JSON lines stay as they are
    assert [orjson.loads(line)["type"] for _, line in entries] == [
        "Recon:EC2/PortProbeUnprotectedPort",
        "UnauthorizedAccess:EC2/SSHBruteForce",
        "CryptoCurrency:EC2/BitcoinTool.B!DNS",
    ]
    assert [ts for ts, _ in entries] == [
        utc_ns(2025, 3, 14, 9, 40, 12, 345_000_000),
        utc_ns(2025, 3, 14, 9, 41),
        utc_ns(2025, 3, 14, 9, 42, 30, 500_000_000),
    ]
    assert stats.ts_fallback == 0


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("alb", ALB_KEY),
        ("nlb", NLB_KEY),
        ("vpc", VPC_KEY),
        ("cloudtrail", CLOUDTRAIL_KEY),
        ("cloudfront", CLOUDFRONT_KEY),
        ("waf", WAF_KEY),
        ("msk", MSK_KEY),
        ("guardduty", GUARDDUTY_KEY),
    ],
)
def test_plain_and_gzip_give_the_same_entries(name: str, key: str) -> None:
    obj = classify("b", key)
    gz = fixture_bytes(name)
    assert gz[:2] == b"\x1f\x8b"
    from_gzip, stats_gzip = read_all(obj, gz)
    from_plain, stats_plain = read_all(obj, gzip.decompress(gz))
    assert from_gzip == from_plain and from_gzip
    assert stats_gzip == stats_plain
    # a caller may hand in an already decompressed stream too
    assert [e for c in read_entries(obj, gzip.GzipFile(fileobj=io.BytesIO(gz)), RECEIVE_NS) for e in c] == from_gzip


# --- unknown keys, fallbacks, line handling --------------------------------------------------


def test_unknown_key_is_ingested_with_receive_time() -> None:
    key = KEYS["unknown"]
    obj = classify("relay-test-uploads", key)
    assert obj.labels == {"__aws_log_type": "s3", "__aws_s3_bucket": "relay-test-uploads", "__aws_s3_key": key}
    entries, stats = read_all(obj, gzip.compress(b"one\r\ntwo\n\nthree"))
    # 1 ns apart: Loki merges entries of equal stream, time and line, so equal lines must differ in time
    assert entries == [(RECEIVE_NS, "one"), (RECEIVE_NS + 1, "two"), (RECEIVE_NS + 2, "three")]
    assert stats.ts_fallback == 0 and stats.skipped == 1
    # our payload: CR LF, a blank line and no final newline
    entries, stats = read_all(obj, fixture_bytes("unknown"))
    assert entries == [(RECEIVE_NS, "exported at the end of the day"), (RECEIVE_NS + 1, "rows: 1288"),
                       (RECEIVE_NS + 2, "status: complete")]
    assert stats.skipped == 1


def test_unparseable_timestamp_falls_back_and_is_counted() -> None:
    text = (
        "http 2022-12-06T17:42:16.176563Z a b\n"
        "no time here\n"
        "http 2022-13-06T17:42:16Z bad month\n"
        "http 2022-12-06T17:42:16+01:00 with offset\n"
    )
    entries, stats = read_all(classify("b", ALB_KEY), text.encode())
    assert [ts for ts, _ in entries] == [
        utc_ns(2022, 12, 6, 17, 42, 16, 176_563_000),
        RECEIVE_NS,
        RECEIVE_NS + 1,
        utc_ns(2022, 12, 6, 16, 42, 16),
    ]
    assert stats.ts_fallback == 2
    for key, line in [(CLOUDFRONT_KEY, "2023-04-26 bad"), (WAF_KEY, '{"no":1}'), (MSK_KEY, "\tat java.lang.Thread.run"),
                      (S3_ACCESS_KEY, "[99/Foo/2019:00:00:38 +0000]")]:
        entries, stats = read_all(classify("b", key), line.encode())
        assert entries == [(RECEIVE_NS, line)] and stats.ts_fallback == 1, key


@pytest.mark.parametrize("final_newline", [b"", b"\n", b"\r\n"])
def test_a_1mb_line_is_one_entry(final_newline: bytes) -> None:
    big = b"x" * (1 << 20) + b" 2022-12-06T17:42:16Z " + b"y" * 1000
    data = b"first 2022-12-06T17:42:15Z\n" + big + final_newline
    for payload in (data, gzip.compress(data)):
        entries, stats = read_all(classify("b", ALB_KEY), payload)
        assert [len(line) for _, line in entries] == [26, len(big)]
        assert entries[1] == (utc_ns(2022, 12, 6, 17, 42, 16), big.decode())
        assert stats.bytes == len(data)


def test_line_longer_than_max_bytes() -> None:
    data = b"a\n" + b"x" * 5000 + b"\nb\n"
    with pytest.raises(ObjectTooLarge, match="longer than 4096"):
        read_all(classify("b", "k"), data, max_bytes=4096)
    ok = b"0123456789\n" * 3 + b"0123456789"
    assert len(read_all(classify("b", "k"), ok, max_bytes=10)[0]) == 4
    for bad in (b"0123456789\n0123456789x\n", b"0123456789\r\n0123456789x", b"01234567890"):
        with pytest.raises(ObjectTooLarge):
            read_all(classify("b", "k"), bad, max_bytes=10)


def test_chunking() -> None:
    obj = classify("b", "k")
    data = b"".join(b"line %d\n" % i for i in range(2500))
    chunks = list(read_entries(obj, io.BytesIO(data), 0, chunk_lines=1000))
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    assert [line for c in chunks for _, line in c] == [f"line {i}" for i in range(2500)]
    # a byte budget splits big lines sooner
    data = b"".join(b"z" * 100_000 + b"\n" for _ in range(50))
    chunks = list(read_entries(obj, io.BytesIO(data), 0, chunk_bytes=1 << 20))
    assert sum(len(c) for c in chunks) == 50 and len(chunks) > 1


def test_invalid_utf8_is_replaced() -> None:
    entries, _ = read_all(classify("b", "k"), b"caf\xc3\xa9 \xff ok\n")
    assert entries == [(RECEIVE_NS, "caf\u00e9 \ufffd ok")]


def test_corrupt_and_truncated_gzip() -> None:
    good = gzip.compress(b"a\n" * 100_000)
    with pytest.raises(S3LogError):
        read_all(classify("b", "k"), good[: len(good) // 2])
    with pytest.raises(S3LogError):
        read_all(classify("b", "k"), b"\x1f\x8b" + b"\x00" * 50)


def test_concatenated_gzip_members() -> None:
    data = gzip.compress(b"a 2022-12-06T17:42:16Z\n") + gzip.compress(b"b 2022-12-06T17:42:17Z\n")
    entries, _ = read_all(classify("b", ALB_KEY), data)
    assert [line for _, line in entries] == ["a 2022-12-06T17:42:16Z", "b 2022-12-06T17:42:17Z"]


def test_empty_and_tiny_objects() -> None:
    assert read_all(classify("b", "k"), b"")[0] == []
    assert read_all(classify("b", "k"), b"\x1f")[0] == [(RECEIVE_NS, "\x1f")]
    assert read_all(classify("b", "k"), gzip.compress(b""))[0] == []


_line_text = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.tuples(_line_text, st.sampled_from(["\n", "\r\n"])), max_size=30),
    final_newline=st.booleans(),
    block=st.integers(min_value=1, max_value=64),
    gz=st.booleans(),
)
def test_any_block_boundary(lines: list[tuple[str, str]], final_newline: bool, block: int, gz: bool) -> None:
    text = "".join(line + end for line, end in lines)
    if lines and not final_newline:
        text = text[: -len(lines[-1][1])]
    data = text.encode()
    saved = s3logs._BLOCK
    s3logs._BLOCK = block
    try:
        entries, stats = read_all(classify("b", "k"), gzip.compress(data) if gz else data, chunk_lines=7)
    finally:
        s3logs._BLOCK = saved
    assert [line for _, line in entries] == [line for line, _ in lines if line]
    assert stats.bytes == len(data)


# --- timestamp helpers --------------------------------------------------------------------


def test_iso_ns_and_unix_digits() -> None:
    assert iso_ns("2023-05-19T07:44:30Z") == utc_ns(2023, 5, 19, 7, 44, 30)
    assert iso_ns("2023-05-19T07:44:30.123456789Z") == utc_ns(2023, 5, 19, 7, 44, 30, 123_456_789)
    assert iso_ns("2023-05-19T07:44:30.1234567891Z") == utc_ns(2023, 5, 19, 7, 44, 30, 123_456_789)
    assert iso_ns("2023-05-19T09:44:30+02:00") == utc_ns(2023, 5, 19, 7, 44, 30)
    assert iso_ns("2023-05-19T06:14:30-0130") == utc_ns(2023, 5, 19, 7, 44, 30)
    assert iso_ns("2023-02-29T00:00:00Z") is None
    assert iso_ns("2024-02-29T00:00:00Z") == utc_ns(2024, 2, 29)
    assert iso_ns("yesterday") is None and iso_ns(None) is None and iso_ns(5) is None
    assert unix_digits_ns("1234567890") == 1_234_567_890_000_000_000
    assert unix_digits_ns("1234567890123") == 1_234_567_890_123_000_000
    assert unix_digits_ns("1234567890123456") == 1_234_567_890_123_456_000
    assert unix_digits_ns("1234567890123456789") == 1_234_567_890_123_456_789


# --- fetching from S3 (moto server) -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_client() -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket="logs")
        yield client
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("name", "key", "count"),
    [
        ("alb", ALB_KEY, 3),
        ("nlb", NLB_KEY, 2),
        ("vpc", VPC_KEY, 3),
        ("cloudtrail", CLOUDTRAIL_KEY, 3),
        ("cloudfront", CLOUDFRONT_KEY, 3),
        ("waf", WAF_KEY, 2),
        ("msk", MSK_KEY, 3),
        ("s3_access", S3_ACCESS_KEY, 2),
        ("guardduty", GUARDDUTY_KEY, 3),
    ],
)
def test_open_object_from_s3(s3_client: Any, name: str, key: str, count: int) -> None:
    data = fixture_bytes(name)
    s3_client.put_object(Bucket="logs", Key=key, Body=data)
    body = open_object(s3_client, "logs", key)
    assert body.read() == (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    obj = classify("logs", key)
    stats = S3Stats()
    entries = [e for c in read_entries(obj, open_object(s3_client, "logs", key), RECEIVE_NS, stats=stats) for e in c]
    assert len(entries) == count and stats.ts_fallback == 0
    assert entries == read_all(obj, data)[0]
    # the raw StreamingBody works as well
    raw = s3_client.get_object(Bucket="logs", Key=key)["Body"]
    assert [e for c in read_entries(obj, raw, RECEIVE_NS) for e in c] == entries


def test_open_object_streams_a_big_object(s3_client: Any) -> None:
    record = b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 %d %d ACCEPT OK\n"
    data = b"".join(record % (1669842701 + i, 1669842702 + i) for i in range(50_000))
    key = VPC_KEY.replace("fl-0e1d2c3b4a5f6e7d8", "fl-big")
    s3_client.put_object(Bucket="logs", Key=key, Body=gzip.compress(data))
    chunks = list(read_entries(classify("logs", key), open_object(s3_client, "logs", key), RECEIVE_NS))
    assert [len(c) for c in chunks][:3] == [1000, 1000, 1000]
    assert sum(len(c) for c in chunks) == 50_000
    assert chunks[-1][-1][0] == (1669842701 + 49_999) * 10**9
