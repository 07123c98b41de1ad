"""Small S3 log objects of every layout the relay knows, written by us for the backfill tests.

Each maker returns (key, body bytes, lines): `lines` are the log lines as Loki should
receive them, so a test can compare exactly. Every line carries a unique `tag`.
"""

from __future__ import annotations

import datetime as dt
import gzip

import orjson

ACCOUNT = "111122223333"
REGION = "eu-west-1"


def _gz(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode())


def _d(t: dt.datetime) -> str:
    return t.strftime("%Y/%m/%d")


def _z(t: dt.datetime) -> str:
    return t.strftime("%Y%m%dT%H%MZ")


def alb(t: dt.datetime, tag: str, n: int, name: str = "my-alb") -> tuple[str, bytes, list[str]]:
    key = (f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/{_d(t)}/{ACCOUNT}_elasticloadbalancing_{REGION}_app."
           f"{name}.50dc6c495c0c9188_{_z(t)}_10.0.0.1_{tag}.log.gz")
    lines = [f'https {(t + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S")}.{i:06d}Z app/{name}/50dc6c 192.0.2.{i % 250}:4{i:04d} '
             f'10.0.0.1:80 0.001 0.002 0.000 200 200 34 366 "GET https://example.test:443/{tag}/{i} HTTP/1.1" "curl/8" '
             f'- - arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/tg/1 "Root=1-{tag}-{i}"' for i in range(n)]
    return key, _gz(lines), lines


def vpc(t: dt.datetime, tag: str, n: int) -> tuple[str, bytes, list[str]]:
    key = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{_d(t)}/{ACCOUNT}_vpcflowlogs_{REGION}_fl-0abc123_{_z(t)}_{tag}.log.gz"
    start = int(t.timestamp())
    # The same start second for several records: they must all arrive, in order.
    lines = [f"2 {ACCOUNT} eni-{tag} 10.0.0.1 10.0.0.2 443 {40000 + i} 6 10 840 {start + i // 3} {start + 60} ACCEPT OK"
             for i in range(n)]
    header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    return key, _gz([header] + lines), lines


def cloudtrail(t: dt.datetime, tag: str, n: int) -> tuple[str, bytes, list[str]]:
    key = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{_d(t)}/{ACCOUNT}_CloudTrail_{REGION}_{_z(t)}_{tag}.json.gz"
    records = [{"eventVersion": "1.08", "eventTime": (t + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventName": "GetObject", "tag": f"{tag}-{i}"} for i in range(n)]
    lines = [orjson.dumps(r).decode() for r in records]
    return key, gzip.compress(orjson.dumps({"Records": records})), lines


def cloudtrail_digest(t: dt.datetime, tag: str) -> tuple[str, bytes, list[str]]:
    key = f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/{_d(t)}/{ACCOUNT}_CloudTrail-Digest_{REGION}_trail_{REGION}_{_z(t)}.json.gz"
    return key, gzip.compress(b'{"digestStartTime":"x"}'), []


def cloudfront(t: dt.datetime, tag: str, n: int, prefix: str = "cf") -> tuple[str, bytes, list[str]]:
    key = f"{prefix}/E2EXAMPLE0123.{t.strftime('%Y-%m-%d-%H')}.{tag}.gz"
    lines = [f"{t.strftime('%Y-%m-%d')}\t{(t + dt.timedelta(seconds=i)).strftime('%H:%M:%S')}\tLAX1\t{1000 + i}\t192.0.2.1\tGET\t"
             f"d111111abcdef8.cloudfront.net\t/{tag}/{i}\t200" for i in range(n)]
    return key, _gz(["#Version: 1.0", "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status"]
                    + lines), lines


def waf(t: dt.datetime, tag: str, n: int) -> tuple[str, bytes, list[str]]:
    key = (f"AWSLogs/{ACCOUNT}/WAFLogs/{REGION}/my-acl/{_d(t)}/{t.strftime('%H/%M')}/"
           f"{ACCOUNT}_waflogs_{REGION}_my-acl_{_z(t)}_{tag}.log.gz")
    ms = int(t.timestamp() * 1000)
    lines = [orjson.dumps({"timestamp": ms + i, "action": "ALLOW", "tag": f"{tag}-{i}"}).decode() for i in range(n)]
    return key, _gz(lines), lines


def guardduty(t: dt.datetime, tag: str, n: int) -> tuple[str, bytes, list[str]]:
    key = f"AWSLogs/{ACCOUNT}/GuardDuty/{REGION}/{_d(t)}/{tag}.jsonl.gz"
    lines = [orjson.dumps({"updatedAt": (t + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                           "id": f"{tag}-{i}"}).decode() for i in range(n)]
    return key, _gz(lines), lines


def msk(t: dt.datetime, tag: str, n: int) -> tuple[str, bytes, list[str]]:
    key = f"AWSLogs/{ACCOUNT}/KafkaBrokerLogs/{REGION}/my-cluster-1/{t.strftime('%Y-%m-%d-%H')}/broker-{tag}.log.gz"
    lines = [f"[{(t + dt.timedelta(seconds=i)).strftime('%Y-%m-%d %H:%M:%S')},{i % 1000:03d}] INFO {tag} message {i} (kafka.server)"
             for i in range(n)]
    return key, _gz(lines), lines


def s3_access(t: dt.datetime, tag: str, n: int, partitioned: bool = True) -> tuple[str, bytes, list[str]]:
    name = f"{t.strftime('%Y-%m-%d-%H-%M-%S')}-{tag.upper():0>16}"[:36]
    key = f"s3access/{ACCOUNT}/{REGION}/src-bucket/{_d(t)}/{name}" if partitioned else f"simple/{name}"
    stamp = t.strftime("%d/%b/%Y:%H:%M:%S +0000")
    lines = [f'79a59df900b949e5 src-bucket [{stamp}] 192.0.2.3 - {tag}{i:04d} REST.GET.OBJECT k/{i} '
             f'"GET /src-bucket/k/{i} HTTP/1.1" 200 - 10 10 1 1 "-" "curl/8" -' for i in range(n)]
    return key, ("\n".join(lines) + "\n").encode(), lines  # S3 access logs come uncompressed


def unknown(tag: str, n: int) -> tuple[str, bytes, list[str]]:
    key = f"misc/{tag}-notes.txt"
    lines = [f"free text {tag} {i}" for i in range(n)] + ["same line twice", "same line twice"]
    return key, ("\n".join(lines) + "\n").encode(), lines


def every_type(t: dt.datetime, n: int = 5) -> dict[str, tuple[str, bytes, list[str]]]:
    """log type -> one object of that type at time t."""
    return {
        "s3_lb": alb(t, "lb1", n),
        "s3_vpc_flow": vpc(t, "vpc1", n),
        "s3_cloudtrail": cloudtrail(t, "ct1", n),
        "s3_cloudfront": cloudfront(t, "cf1", n),
        "s3_waf": waf(t, "waf1", n),
        "s3_guardduty": guardduty(t, "gd1", n),
        "s3_msk": msk(t, "msk1", n),
        "s3_access": s3_access(t, "a1", n),
        "s3": unknown("u1", n),
    }
