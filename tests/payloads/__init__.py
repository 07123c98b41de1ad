"""The project's own AWS sample payloads (written by make.py beside this file), and where they live in S3.

Tests read them with `read`, `text` and `load`; the S3 keys under which each log file is delivered
are in `KEYS` (each follows the layout AWS documents for that service, with invented names).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ACCOUNT = "210987654321"
REGION = "eu-west-3"

# S3 log objects: name -> (file, key).
_OBJECTS: dict[str, tuple[str, str]] = {
    "alb": ("s3/alb.log.gz",
            f"AWSLogs/{ACCOUNT}/elasticloadbalancing/eu-west-3/2025/03/14/{ACCOUNT}_elasticloadbalancing_eu-west-3_"
            "app.shop-frontend.7c1e9a2b3d4f5061_20250314T0905Z_198.51.100.24_k3j9x0qa.log.gz"),
    "nlb": ("s3/nlb.log.gz",
            f"edge/AWSLogs/{ACCOUNT}/elasticloadbalancing/eu-west-3/2025/03/14/{ACCOUNT}_elasticloadbalancing_"
            "eu-west-3_net.payments-nlb.3e4f5a6b7c8d9e0f_20250314T0910Z_q8w7e6r5.log.gz"),
    "vpc": ("s3/vpcflow.log.gz",
            f"AWSLogs/{ACCOUNT}/vpcflowlogs/eu-west-3/2025/03/14/"
            f"{ACCOUNT}_vpcflowlogs_eu-west-3_fl-0e1d2c3b4a5f6e7d8_20250314T0910Z_5c6d7e8f.log.gz"),
    "cloudtrail": ("s3/cloudtrail.json.gz",
                   f"AWSLogs/{ACCOUNT}/CloudTrail/eu-west-3/2025/03/14/"
                   f"{ACCOUNT}_CloudTrail_eu-west-3_20250314T0905Z_Vb7Lq2Xw9Rt4Kp1M.json.gz"),
    "cloudtrail_digest": ("s3/cloudtrail-digest.json.gz",
                          f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/eu-west-3/2025/03/14/"
                          f"{ACCOUNT}_CloudTrail-Digest_eu-west-3_shop-trail_eu-west-3_20250314T090000Z.json.gz"),
    "cloudfront": ("s3/cloudfront.gz", "cdn-logs/E3ZK7EXAMPLE9Q.2025-03-14-09.5f6e7d8c.gz"),
    "waf": ("s3/waf.log.gz",
            f"AWSLogs/{ACCOUNT}/WAFLogs/eu-west-3/shop-acl/2025/03/14/09/15/"
            f"{ACCOUNT}_waflogs_eu-west-3_shop-acl_20250314T0915Z_7a8b9c0d.log.gz"),
    "msk": ("s3/msk.log.gz",
            f"AWSLogs/{ACCOUNT}/KafkaBrokerLogs/eu-west-3/orders-cluster-2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091-2/"
            "2025-03-14-09/Broker-2_09-20_4e5f6a7b.log.gz"),
    "s3_access": ("s3/s3access.log",
                  f"{ACCOUNT}/eu-west-3/relay-test-assets/2025/03/14/2025-03-14-09-31-15-3C4D5E6F7A8B9C0D"),
    "guardduty": ("s3/guardduty.jsonl.gz",
                  f"AWSLogs/{ACCOUNT}/GuardDuty/eu-west-3/2025/03/14/2f3e4d5c-6b7a-3891-a0b1-c2d3e4f5a6b7.jsonl.gz"),
    "unknown": ("s3/unknown.txt", "exports/daily summary.txt"),
}
KEYS: dict[str, str] = {name: key for name, (_, key) in _OBJECTS.items()}
OBJECT_FILES: dict[str, str] = {name: file for name, (file, _) in _OBJECTS.items()}


def read(name: str) -> bytes:
    """The bytes of a payload file, e.g. `read("s3/alb.log.gz")` or `read("events/sqs.json")`."""
    return (HERE / name).read_bytes()


def text(name: str) -> str:
    """A payload file as text, gunzipped if it is gzip (told by its magic bytes)."""
    data = read(name)
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()


def load(name: str) -> Any:
    """A JSON payload file, parsed."""
    return json.loads(read(name))


def s3_object(name: str) -> bytes:
    """The S3 object of a log type, by its `KEYS` name."""
    return read(OBJECT_FILES[name])
