"""relay.aws.s3logs: key classification and streaming parsing of AWS logs stored in S3."""

from __future__ import annotations

import calendar
import gzip
import io
import socket
from collections.abc import Iterator
from pathlib import Path
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

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
AWS = FIXTURES / "aws"
RECEIVE_NS = 1_700_000_000_123_456_789

# The README's example keys.
ALB_KEY = (
    "my-bucket/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2022/01/24/"
    "123456789012_elasticloadbalancing_us-east-1_app.my-loadbalancer.b13ea9d19f16d015_20220124T0000Z_0.0.0.0_"
    "2et2e1mx.log.gz"
)
NLB_KEY = (
    "my-bucket/prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/"
    "123456789012_elasticloadbalancing_us-east-2_net.my-loadbalancer.1234567890abcdef_201605010000Z_2soosksi.log.gz"
)
VPC_KEY = (
    "my-bucket/AWSLogs/123456789012/vpcflowlogs/us-east-1/2022/01/24/"
    "123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz"
)
CLOUDTRAIL_KEY = (
    "my-bucket/AWSLogs/123456789012/CloudTrail/us-east-1/2022/01/24/"
    "123456789012_CloudTrail_us-east-1_20220124T0000Z_4jhzXFO2Jlvu2b3y.json.gz"
)
CLOUDFRONT_KEY = "my/bucket/prefix/E2K2LNL5N3WR51.2022-07-18-12.a10a8496.gz"
WAF_KEY = (
    "prefix/AWSLogs/11111111111/WAFLogs/us-east-1/TEST-WEBACL/2021/10/28/19/50/"
    "11111111111_waflogs_us-east-1_TEST-WEBACL_20211028T1950Z_e0ca43b5.log.gz"
)
MSK_KEY = (
    "prefix/AWSLogs/111111111111/KafkaBrokerLogs/eu-south-2/msk-test-name-7f6b9b77-24f9-4921-87b6-d29a6401e292-3/"
    "2025-07-04-11/Broker-1_11-55_cab960bb.log.gz"
)
S3_ACCESS_KEY = "123456789012/us-east-1/amzn-s3-demo-source-bucket/2023/03/01/2023-03-01-21-32-16-E568B2907131C0C0"
GUARDDUTY_KEY = (
    "my-bucket/AWSLogs/123456789012/GuardDuty/us-east-1/2024/05/30/07a3f2ce-1485-3031-b842-e1f324c4a48d.jsonl.gz"
)


def utc_ns(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ns: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1_000_000_000 + ns


def fixture_bytes(name: str) -> bytes:
    return (AWS / name).read_bytes()


def fixture_text(name: str) -> str:
    data = fixture_bytes(name)
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()


def read_all(obj: s3logs.S3Object, data: bytes, **kw: Any) -> tuple[list[tuple[int, str]], S3Stats]:
    stats = S3Stats()
    entries = [e for chunk in read_entries(obj, io.BytesIO(data), RECEIVE_NS, stats=stats, **kw) for e in chunk]
    assert stats.entries == len(entries)
    return entries, stats


# --- classification ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "log_type", "src", "owner"),
    [
        (ALB_KEY, LB, "my-loadbalancer", "123456789012"),
        (NLB_KEY, LB, "my-loadbalancer", "123456789012"),
        (VPC_KEY, VPC_FLOW, "fl-1234abcd", "123456789012"),
        (CLOUDTRAIL_KEY, CLOUDTRAIL, "4jhzXFO2Jlvu2b3y", "123456789012"),
        (CLOUDTRAIL_KEY.replace("AWSLogs/", "AWSLogs/o-test123456/"), CLOUDTRAIL, "4jhzXFO2Jlvu2b3y", "123456789012"),
        (CLOUDFRONT_KEY, CLOUDFRONT, "E2K2LNL5N3WR51", "my/bucket/prefix"),
        (WAF_KEY, WAF, "TEST-WEBACL", "11111111111"),
        (MSK_KEY, MSK, "msk-test-name-7f6b9b77-24f9-4921-87b6-d29a6401e292-3", "111111111111"),
        (S3_ACCESS_KEY, S3_ACCESS, "amzn-s3-demo-source-bucket", "123456789012"),
        (GUARDDUTY_KEY, GUARDDUTY, None, "123456789012"),
        # lambda-promtail's own test keys: GovCloud regions
        (VPC_KEY.replace("us-east-1", "us-gov-east-1"), VPC_FLOW, "fl-1234abcd", "123456789012"),
        (WAF_KEY.replace("us-east-1", "us-gov-east-1"), WAF, "TEST-WEBACL", "11111111111"),
        # keys lambda-promtail does not recognise
        (
            "b/AWSLogs/123456789012/vpcflowlogs/us-east-1/2022/01/24/13/"
            "123456789012_vpcflowlogs_us-east-1_fl-0a1b2c3d4e5f_20220124T1305Z_fe123456.log.gz",
            VPC_FLOW,
            "fl-0a1b2c3d4e5f",
            "123456789012",
        ),
        (
            "AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=eu-west-1/year=2022/month=01/"
            "day=24/hour=13/123456789012_vpcflowlogs_eu-west-1_fl-0a1b2c3d_20220124T1305Z_fe123456.log.gz",
            VPC_FLOW,
            "fl-0a1b2c3d",
            "123456789012",
        ),
        (
            "logging-prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2022/05/01/conn_log_123456789012_"
            "elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20220215T2340Z_172.160.001.192_"
            "20sg8hgm.log.gz",
            LB,
            "my-loadbalancer",
            "123456789012",
        ),
        (
            "hc/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2025/11/21/health_check_log_123456789012_"
            "elasticloadbalancing_us-east-2_app.my-alb.1234567890abcdef_20251121T0505Z_10.0.1.2_abcd1234.log.gz",
            LB,
            "my-alb",
            "123456789012",
        ),
        (
            "AWSLogs/123456789012/elasticloadbalancing/us-west-2/2014/02/15/"
            "123456789012_elasticloadbalancing_us-west-2_my-classic-lb_20140215T2340Z_172.160.001.192_20sg8hgm.log",
            LB,
            "my-classic-lb",
            "123456789012",
        ),
        (
            "AWSLogs/000000000000/CloudTrail/us-east-1/2026/07/16/example_CloudTrail_us-east-1.json.gz",
            CLOUDTRAIL,
            None,
            "000000000000",
        ),
        ("E2K2LNL5N3WR51.2022-07-18-12.a10a8496.gz", CLOUDFRONT, "E2K2LNL5N3WR51", None),
        ("logs/123456789012/us-east-1/my.dotted.bucket/2023/03/01/2023-03-01-21-32-16-E568B2907131C0C0", S3_ACCESS,
         "my.dotted.bucket", "123456789012"),
        ("access-logs/2023-03-01-21-32-16-E568B2907131C0C0", S3_ACCESS, None, None),
        # unknown
        ("Happy Face.jpg", UNKNOWN, None, None),
        ("some-object.json", UNKNOWN, None, None),
        ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2023/01/18/end-of-filename.log.gz", UNKNOWN, None, None),
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
    key = CLOUDTRAIL_KEY.replace("/CloudTrail/", "/CloudTrail-Digest/").replace("_CloudTrail_", "_CloudTrail-Digest_")
    obj = classify("b", key)
    assert obj.log_type == CLOUDTRAIL and obj.skip
    entries, stats = read_all(obj, fixture_bytes("cloudtrail-log-file.json.gz"))
    assert entries == [] and stats.bytes == 0


# --- each fixture: lines and timestamps ----------------------------------------------------


def check_lines(entries: list[tuple[int, str]], expected_lines: list[str]) -> None:
    assert [line for _, line in entries] == expected_lines


def test_alb() -> None:
    entries, stats = read_all(classify("b", ALB_KEY), fixture_bytes("albaccesslog.log.gz"))
    check_lines(entries, fixture_text("albaccesslog.log.gz").splitlines())
    assert len(entries) == 2
    assert entries[0][1].startswith("http 2022-12-06T17:42:16.176563Z random/lb/f12345d67890 ")
    assert entries[-1][1].startswith("https 2022-12-06T17:42:19.086095Z random/lb/f12345d67890 ")
    assert [ts for ts, _ in entries] == [
        utc_ns(2022, 12, 6, 17, 42, 16, 176_563_000),
        utc_ns(2022, 12, 6, 17, 42, 19, 86_095_000),
    ]
    assert entries[0][0] == 1_670_348_536_176_563_000
    assert stats.ts_fallback == 0 and stats.skipped == 0


def test_nlb_time_without_zone_is_utc() -> None:
    entries, stats = read_all(classify("b", NLB_KEY), fixture_bytes("nlbaccesslog.log.gz"))
    check_lines(entries, fixture_text("nlbaccesslog.log.gz").splitlines())
    assert entries[0][1].startswith("tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/")
    assert entries[-1][1].endswith(' h2 h2 "h2","http/1.1" 2020-04-01T08:51:20')
    assert [ts for ts, _ in entries] == [utc_ns(2018, 12, 20, 2, 59, 40), utc_ns(2020, 4, 1, 8, 51, 42)]
    assert stats.ts_fallback == 0


def test_vpc_flow_uses_start_and_skips_header() -> None:
    entries, stats = read_all(classify("b", VPC_KEY), fixture_bytes("vpcflowlog.log.gz"))
    lines = fixture_text("vpcflowlog.log.gz").splitlines()
    assert lines[0].startswith("version account-id")
    check_lines(entries, lines[1:])
    assert len(entries) == 3
    assert entries[0][1] == (
        "2 123456789012 eni-0050644426037aa0f 10.26.1.153 3.239.232.29 60220 443 6 48 21869 "
        "1669842701 1669842702 ACCEPT OK"
    )
    assert entries[-1][1] == (
        "2 123456789012 eni-01971454a0f14024a 10.26.0.9 10.26.4.139 5007 57879 6 2 112 1669842715 1669842716 ACCEPT OK"
    )
    assert [ts for ts, _ in entries] == [1669842701 * 10**9, 1669842701 * 10**9, 1669842715 * 10**9]
    assert stats.skipped == 1 and stats.ts_fallback == 0


def test_vpc_flow_custom_format_header_and_nodata() -> None:
    text = (
        "account-id action start end log-status\n"
        "123456789012 ACCEPT 1669842701 1669842702 OK\n"
        "123456789012 - 1669842800 1669842860 NODATA\n"
        "123456789012 ACCEPT - - SKIPDATA\n"
    )
    entries, stats = read_all(classify("b", VPC_KEY), text.encode())
    assert [ts for ts, _ in entries] == [1669842701 * 10**9, 1669842800 * 10**9, RECEIVE_NS]
    assert stats.ts_fallback == 1 and stats.skipped == 1
    # without a header line, the first record is kept and `start` is the default version-2 column
    records = "\n".join(fixture_text("vpcflowlog.log.gz").splitlines()[1:])
    entries, stats = read_all(classify("b", VPC_KEY), records.encode())
    assert len(entries) == 3 and stats.skipped == 0 and entries[0][0] == 1669842701 * 10**9


def test_cloudtrail_one_compact_json_line_per_record() -> None:
    entries, stats = read_all(classify("b", CLOUDTRAIL_KEY), fixture_bytes("cloudtrail-log-file.json.gz"))
    records = orjson.loads(fixture_text("cloudtrail-log-file.json.gz"))["Records"]
    assert fixture_text("cloudtrail-log-file.json.gz").count("\n") == 106  # pretty-printed over many lines
    assert len(entries) == 2
    assert [line for _, line in entries] == [orjson.dumps(r).decode() for r in records]
    assert entries[0][1].startswith('{"eventVersion":"1.08","userIdentity":{"type":"AWSService"')
    assert '"eventName":"AssumeRole"' in entries[0][1] and "\n" not in entries[0][1]
    assert '"eventName":"BatchGetImage"' in entries[-1][1]
    assert entries[-1][1].endswith('"vpcEndpointId":"vpce-0ebef659b2671eea7","eventCategory":"Management"}')
    assert [ts for ts, _ in entries] == [utc_ns(2023, 5, 19, 7, 44, 30), utc_ns(2023, 5, 19, 7, 44, 34)]
    assert stats.ts_fallback == 0


def test_cloudtrail_errors_and_limits() -> None:
    obj = classify("b", CLOUDTRAIL_KEY)
    with pytest.raises(ObjectTooLarge, match="larger than 1000 bytes"):
        read_all(obj, fixture_bytes("cloudtrail-log-file.json.gz"), max_bytes=1000)
    with pytest.raises(S3LogError, match="not JSON"):
        read_all(obj, gzip.compress(b'{"Records": ['))
    with pytest.raises(S3LogError, match="Records"):
        read_all(obj, b'{"records": []}')
    entries, stats = read_all(obj, b'{"Records": [{"eventTime": "bad"}, {"eventTime": "2023-05-19T07:44:30.5Z"}, 3]}')
    assert entries == [
        (RECEIVE_NS, '{"eventTime":"bad"}'),
        (utc_ns(2023, 5, 19, 7, 44, 30, 500_000_000), '{"eventTime":"2023-05-19T07:44:30.5Z"}'),
        (RECEIVE_NS, "3"),
    ]
    assert stats.ts_fallback == 2
    body = io.BytesIO(fixture_bytes("cloudtrail-log-file.json.gz"))
    chunks = list(read_entries(obj, body, RECEIVE_NS, chunk_lines=1))
    assert [len(c) for c in chunks] == [1, 1]


def test_cloudfront_skips_headers_and_reads_last_line_without_newline() -> None:
    text = fixture_text("cloudfront.log.gz")
    assert not text.endswith("\n")
    entries, stats = read_all(classify("b", CLOUDFRONT_KEY), fixture_bytes("cloudfront.log.gz"))
    lines = text.splitlines()
    assert lines[0].startswith("#Version") and lines[1].startswith("#Fields")
    check_lines(entries, lines[2:])
    assert len(entries) == 2
    assert entries[0][1].startswith("2023-04-26\t07:25:11\tABC11-C1\t122254\t13.231.15.129\tGET\t")
    assert entries[-1][1].startswith("2023-04-26\t07:25:11\tABC11-C1\t27113\t")
    assert entries[-1][1] == lines[-1]
    assert [ts for ts, _ in entries] == [utc_ns(2023, 4, 26, 7, 25, 11)] * 2
    assert stats.skipped == 2 and stats.ts_fallback == 0


def test_waf_epoch_ms() -> None:
    entries, stats = read_all(classify("b", WAF_KEY), fixture_bytes("waflog.log.gz"))
    check_lines(entries, fixture_text("waflog.log.gz").splitlines())
    assert len(entries) == 1
    assert entries[0][1].startswith('{"timestamp":1693457862729,"formatVersion":1,"webaclId":"arn:aws:wafv2:')
    assert entries[0][0] == 1_693_457_862_729_000_000 == utc_ns(2023, 8, 31, 4, 57, 42, 729_000_000)
    assert stats.ts_fallback == 0


def test_msk_log4j_time_and_crlf() -> None:
    raw = fixture_text("msklog.log.gz")
    assert "\r\n" in raw and not raw.endswith("\n")
    entries, stats = read_all(classify("b", MSK_KEY), fixture_bytes("msklog.log.gz"))
    assert entries == [
        (utc_ns(2025, 7, 4, 11, 57, 55, 836_000_000), "[2025-07-04 11:57:55,836] INFO AdminClientConfig values:"),
        (
            utc_ns(2025, 7, 4, 11, 57, 55, 839_000_000),
            "[2025-07-04 11:57:55,839] INFO Kafka version: 4.0.0 (org.apache.kafka.common.utils.AppInfoParser)",
        ),
    ]
    assert stats.ts_fallback == 0


def test_s3_access_log_plain_and_gzip() -> None:
    data = fixture_bytes("s3accesslog.log")
    assert data[:2] != b"\x1f\x8b"
    obj = classify("b", S3_ACCESS_KEY)
    entries, stats = read_all(obj, data)
    assert len(entries) == 1
    assert entries[0][1] == data.decode().rstrip("\n")
    assert entries[0][1].startswith(
        "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be amzn-s3-demo-bucket1 "
        "[06/Feb/2019:00:00:38 +0000] "
    )
    assert entries[0][1].endswith("arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP Yes")
    assert entries[0][0] == utc_ns(2019, 2, 6, 0, 0, 38)
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
        RECEIVE_NS,
    ]
    assert entries[0][1] == orjson.dumps(findings[0]).decode()
    assert stats.ts_fallback == 2


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("albaccesslog.log.gz", ALB_KEY),
        ("nlbaccesslog.log.gz", NLB_KEY),
        ("vpcflowlog.log.gz", VPC_KEY),
        ("cloudtrail-log-file.json.gz", CLOUDTRAIL_KEY),
        ("cloudfront.log.gz", CLOUDFRONT_KEY),
        ("waflog.log.gz", WAF_KEY),
        ("msklog.log.gz", MSK_KEY),
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
    obj = classify("sourcebucket", "Happy Face.jpg")
    assert obj.labels == {"__aws_log_type": "s3", "__aws_s3_bucket": "sourcebucket", "__aws_s3_key": "Happy Face.jpg"}
    entries, stats = read_all(obj, gzip.compress(b"one\r\ntwo\n\nthree"))
    assert entries == [(RECEIVE_NS, "one"), (RECEIVE_NS, "two"), (RECEIVE_NS, "three")]
    assert stats.ts_fallback == 0 and stats.skipped == 1


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
        RECEIVE_NS,
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
        ("albaccesslog.log.gz", ALB_KEY, 2),
        ("vpcflowlog.log.gz", VPC_KEY, 3),
        ("cloudtrail-log-file.json.gz", CLOUDTRAIL_KEY, 2),
        ("cloudfront.log.gz", CLOUDFRONT_KEY, 2),
        ("msklog.log.gz", MSK_KEY, 2),
        ("s3accesslog.log", S3_ACCESS_KEY, 1),
    ],
)
def test_open_object_from_s3(s3_client: Any, name: str, key: str, count: int) -> None:
    data = fixture_bytes(name)
    s3_client.put_object(Bucket="logs", Key=key, Body=data)
    body = open_object(s3_client, "logs", key)
    assert body.read() == (gzip.decompress(data) if name.endswith(".gz") else data)
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
    key = VPC_KEY.replace("fl-1234abcd", "fl-big")
    s3_client.put_object(Bucket="logs", Key=key, Body=gzip.compress(data))
    chunks = list(read_entries(classify("logs", key), open_object(s3_client, "logs", key), RECEIVE_NS))
    assert [len(c) for c in chunks][:3] == [1000, 1000, 1000]
    assert sum(len(c) for c in chunks) == 50_000
    assert chunks[-1][-1][0] == (1669842701 + 49_999) * 10**9
