"""Write the project's own AWS sample payloads into this folder.

    python tests/payloads/make.py           rewrite every file
    python tests/payloads/make.py --check   exit 1 if a committed file differs from what this writes

Every value here (accounts, names, addresses, lines) is invented for this project; the shapes
follow AWS's documented formats: S3 log files as services deliver them, Lambda event payloads
as Lambda hands them to a function, and Amazon Data Firehose HTTP-endpoint request bodies.
gzip output has mtime 0, so the bytes are the same on every run and `--check` can compare.

    s3/        objects the relay fetches from S3, one per log type (keys in `KEYS`, __init__.py)
    events/    Lambda events (JSON)
    firehose/  Firehose HTTP-endpoint bodies (JSON)
"""

from __future__ import annotations

import base64
import gzip
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ACCOUNT = "210987654321"  # ours: the accounts in AWS's own examples are not used


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pretty(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode()


def jsonl(docs: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(d, separators=(",", ":")).encode() + b"\n" for d in docs)


# --- S3 log files --------------------------------------------------------------------------

# ALB access log: space separated, the response time in field 2, the request creation time later.
ALB = [
    'https 2025-03-14T09:04:58.120934Z app/shop-frontend/7c1e9a2b3d4f5061 198.51.100.24:51344 10.40.2.17:8080 '
    '0.001 0.014 0.000 200 200 412 2318 "GET https://shop.example.net:443/cart?id=77 HTTP/2.0" '
    '"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0" TLS_AES_128_GCM_SHA256 TLSv1.3 '
    f'arn:aws:elasticloadbalancing:eu-west-3:{ACCOUNT}:targetgroup/shop-web/0a1b2c3d4e5f6071 '
    '"Root=1-67d3f1aa-0d4c2b1a9e8f7d6c5b4a3921" "shop.example.net" '
    f'"arn:aws:acm:eu-west-3:{ACCOUNT}:certificate/5e6f7a8b-1c2d-4e3f-9a0b-c1d2e3f4a5b6" 0 '
    '2025-03-14T09:04:58.105000Z "forward" "-" "-" "10.40.2.17:8080" "200" "-" "-" TID_1f2e3d4c5b6a',
    'http 2025-03-14T09:05:01.004417Z app/shop-frontend/7c1e9a2b3d4f5061 203.0.113.9:40112 10.40.2.18:8080 '
    '0.000 0.002 0.000 404 404 188 301 "GET http://shop.example.net:80/robots.txt HTTP/1.1" "curl/8.5.0" - - '
    f'arn:aws:elasticloadbalancing:eu-west-3:{ACCOUNT}:targetgroup/shop-web/0a1b2c3d4e5f6071 '
    '"Root=1-67d3f1ad-7a6b5c4d3e2f1a0b9c8d7e6f" "-" "-" 0 2025-03-14T09:05:01.001000Z "forward" "-" "-" '
    '"10.40.2.18:8080" "404" "-" "-" TID_2a3b4c5d6e7f',
    'h2 2025-03-14T09:05:07.650001Z app/shop-frontend/7c1e9a2b3d4f5061 192.0.2.77:61002 - -1 -1 -1 502 - 95 '
    '277 "POST https://shop.example.net:443/api/checkout HTTP/2.0" "okhttp/4.12.0" TLS_AES_256_GCM_SHA384 '
    f'TLSv1.3 arn:aws:elasticloadbalancing:eu-west-3:{ACCOUNT}:targetgroup/shop-api/1b2c3d4e5f607182 '
    '"Root=1-67d3f1b3-11aa22bb33cc44dd55ee66ff" "shop.example.net" '
    f'"arn:aws:acm:eu-west-3:{ACCOUNT}:certificate/5e6f7a8b-1c2d-4e3f-9a0b-c1d2e3f4a5b6" 1 '
    '2025-03-14T09:05:07.640000Z "forward" "-" "-" "-" "-" "-" "-" TID_3b4c5d6e7f80',
]

# NLB (TLS listener) access log: the time in field 3 has no zone (UTC).
NLB = [
    'tls 2.0 2025-03-14T09:10:02 net/payments-nlb/3e4f5a6b7c8d9e0f 9a8b7c6d5e4f3a2b 198.51.100.61:52210 '
    '10.40.8.5:443 412 3 1207 5480 - '
    f'arn:aws:acm:eu-west-3:{ACCOUNT}:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b - '
    'ECDHE-RSA-AES128-GCM-SHA256 tlsv12 - pay.example.net h2 h2 "h2","http/1.1" 2025-03-14T09:09:59',
    'tls 2.0 2025-03-14T09:10:15 net/payments-nlb/3e4f5a6b7c8d9e0f 9a8b7c6d5e4f3a2b 203.0.113.140:33891 '
    '10.40.8.6:443 58 - 0 0 UnknownCA - - - - - - - - - 2025-03-14T09:10:15',
]

VPC_HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
    "log-status"
)
VPC = [
    f"2 {ACCOUNT} eni-0c1d2e3f4a5b6c7d8 10.40.2.17 10.40.9.3 44210 5432 6 12 4087 1741943101 1741943159 ACCEPT OK",
    f"2 {ACCOUNT} eni-0c1d2e3f4a5b6c7d8 203.0.113.200 10.40.2.17 58000 22 6 3 180 1741943104 1741943160 REJECT OK",
    f"2 {ACCOUNT} eni-0d2e3f4a5b6c7d8e9 - - - - - - - 1741943161 1741943220 - NODATA",
]


def cloudtrail_records() -> list[dict[str, Any]]:
    def user(name: str) -> dict[str, Any]:
        return {"type": "IAMUser", "principalId": "AIDAZ7EXAMPLE4QRSTUV", "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
                "accountId": ACCOUNT, "accessKeyId": "AKIAZ7EXAMPLE9ABCDEF", "userName": name}

    return [
        {"eventVersion": "1.09", "userIdentity": user("mila"), "eventTime": "2025-03-14T08:59:12Z",
         "eventSource": "s3.amazonaws.com", "eventName": "CreateBucket", "awsRegion": "eu-west-3",
         "sourceIPAddress": "198.51.100.24", "userAgent": "aws-cli/2.15.30 Python/3.11.8 Linux/6.6",
         "requestParameters": {"bucketName": "relay-test-archive", "Host": "relay-test-archive.s3.amazonaws.com"},
         "responseElements": None, "requestID": "K7Q2W9E4R1T6Y3U8", "eventID": "3f0c1b2a-9d8e-4f7a-b6c5-d4e3f2a1b0c9",
         "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT,
         "eventCategory": "Management"},
        {"eventVersion": "1.09", "userIdentity": {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"},
         "eventTime": "2025-03-14T09:01:40Z", "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
         "awsRegion": "eu-west-3", "sourceIPAddress": "ec2.amazonaws.com", "userAgent": "ec2.amazonaws.com",
         "requestParameters": {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/shop-web-instance",
                               "roleSessionName": "i-0a1b2c3d4e5f60718", "durationSeconds": 3600},
         "responseElements": {"credentials": {"accessKeyId": "ASIAZ7EXAMPLE1GHIJKL",
                                              "expiration": "Mar 14, 2025, 10:01:40 AM"}},
         "requestID": "8e7d6c5b-4a39-4281-9f0e-1d2c3b4a5968", "eventID": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
         "readOnly": True, "resources": [{"accountId": ACCOUNT, "type": "AWS::IAM::Role",
                                          "ARN": f"arn:aws:iam::{ACCOUNT}:role/shop-web-instance"}],
         "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT,
         "sharedEventID": "5b4a3928-1706-4e5d-8c7b-6a5948372615", "eventCategory": "Management"},
        {"eventVersion": "1.09", "userIdentity": user("ops-bot"), "eventTime": "2025-03-14T09:03:05.250Z",
         "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "awsRegion": "eu-west-3",
         "sourceIPAddress": "203.0.113.9", "userAgent": "Boto3/1.34.60 md/Botocore#1.34.60",
         "errorCode": "Client.UnauthorizedOperation",
         "errorMessage": "You are not authorized to perform this operation.",
         "requestParameters": {"instancesSet": {}, "filterSet": {"items": [{"name": "tag:team", "valueSet": {
             "items": [{"value": "shop"}]}}]}},
         "responseElements": None, "requestID": "c0ffee00-1234-4bcd-9876-0a1b2c3d4e5f",
         "eventID": "0d9c8b7a-6f5e-4d3c-2b1a-098f7e6d5c4b", "readOnly": True, "eventType": "AwsApiCall",
         "managementEvent": True, "recipientAccountId": ACCOUNT, "eventCategory": "Management"},
    ]


CLOUDTRAIL_DIGEST = {
    "awsAccountId": ACCOUNT, "digestStartTime": "2025-03-14T08:00:00Z", "digestEndTime": "2025-03-14T09:00:00Z",
    "digestS3Bucket": "relay-test-trail", "digestS3Object": f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/eu-west-3/2025/03/14/"
    f"{ACCOUNT}_CloudTrail-Digest_eu-west-3_shop-trail_eu-west-3_20250314T090000Z.json.gz",
    "digestPublicKeyFingerprint": "4c2a1f0e9d8b7a6c5e4d3b2a1f0e9d8c", "digestSignatureAlgorithm": "SHA256withRSA",
    "newestEventTime": "2025-03-14T08:59:12Z", "oldestEventTime": "2025-03-14T08:01:33Z",
    "previousDigestS3Bucket": "relay-test-trail", "previousDigestSignature": "aa11bb22cc33dd44",
    "logFiles": [],
}

CLOUDFRONT_HEADER = [
    "#Version: 1.0",
    "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) "
    "cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes "
    "time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status "
    "fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len "
    "sc-range-start sc-range-end",
]
CLOUDFRONT = [
    "\t".join(["2025-03-14", "09:12:30", "CDG52-P3", "48211", "198.51.100.24", "GET", "d3kq8example.cloudfront.net",
               "/img/banner.webp", "200", "https://shop.example.net/", "Mozilla/5.0%20(X11;%20Linux%20x86_64)", "-",
               "-", "Hit", "Zq3vB9example0aP1sL2dK3fJ4gH5==", "static.example.net", "https", "312", "0.004", "-",
               "TLSv1.3", "TLS_AES_128_GCM_SHA256", "Hit", "HTTP/2.0", "-", "-", "51344", "0.004", "Hit",
               "image/webp", "48000", "-", "-"]),
    "\t".join(["2025-03-14", "09:12:31", "CDG52-P3", "915", "203.0.113.9", "GET", "d3kq8example.cloudfront.net",
               "/missing.css", "404", "-", "curl/8.5.0", "v=3", "-", "Error", "Yx2wC8example1bQ2tM3eL4gK5hI6==",
               "static.example.net", "https", "140", "0.021", "-", "TLSv1.3", "TLS_AES_128_GCM_SHA256", "Error",
               "HTTP/1.1", "-", "-", "40112", "0.021", "Error", "text/html", "-", "-", "-"]),
    "\t".join(["2025-03-14", "09:13:02", "FRA56-P1", "1024", "192.0.2.77", "GET", "d3kq8example.cloudfront.net",
               "/video/intro.mp4", "206", "-", "okhttp/4.12.0", "-", "-", "Miss", "Xw1vD7example2cR3uN4fM5hL6iJ7==",
               "static.example.net", "https", "220", "0.130", "-", "TLSv1.3", "TLS_AES_256_GCM_SHA384", "Miss",
               "HTTP/2.0", "-", "-", "61002", "0.118", "Miss", "video/mp4", "1024", "0", "1023"]),
]


def waf_records() -> list[dict[str, Any]]:
    acl = f"arn:aws:wafv2:eu-west-3:{ACCOUNT}:regional/webacl/shop-acl/6b5a4938-2716-4f5e-8d7c-6b5a49382716"

    def request(ip: str, country: str, uri: str, method: str, rid: str) -> dict[str, Any]:
        return {"clientIp": ip, "country": country, "headers": [{"name": "Host", "value": "shop.example.net"},
                                                              {"name": "User-Agent", "value": "curl/8.5.0"}],
                "uri": uri, "args": "", "httpVersion": "HTTP/1.1", "httpMethod": method, "requestId": rid}

    return [
        {"timestamp": 1741943590412, "formatVersion": 1, "webaclId": acl, "terminatingRuleId": "Default_Action",
         "terminatingRuleType": "REGULAR", "action": "ALLOW", "terminatingRuleMatchDetails": [],
         "httpSourceName": "ALB", "httpSourceId": f"{ACCOUNT}-app/shop-frontend/7c1e9a2b3d4f5061",
         "ruleGroupList": [], "rateBasedRuleList": [], "nonTerminatingMatchingRules": [],
         "requestHeadersInserted": None, "responseCodeSent": None,
         "httpRequest": request("198.51.100.24", "FR", "/cart", "GET", "1-67d3f1aa-0d4c2b1a9e8f7d6c5b4a3921"),
         "labels": []},
        {"timestamp": 1741943594007, "formatVersion": 1, "webaclId": acl, "terminatingRuleId": "block-admin-paths",
         "terminatingRuleType": "REGULAR", "action": "BLOCK", "terminatingRuleMatchDetails": [],
         "httpSourceName": "ALB", "httpSourceId": f"{ACCOUNT}-app/shop-frontend/7c1e9a2b3d4f5061",
         "ruleGroupList": [], "rateBasedRuleList": [], "nonTerminatingMatchingRules": [],
         "requestHeadersInserted": None, "responseCodeSent": 403,
         "httpRequest": request("203.0.113.140", "NL", "/wp-admin/setup.php", "POST",
                                "1-67d3f1b0-9e8d7c6b5a4f3e2d1c0b9a88"),
         "labels": [{"name": "awswaf:clientip:geo:country:NL"}]},
    ]


# MSK broker log: log4j lines; the first ends in CR LF, the last has no final newline.
MSK = [
    "[2025-03-14 09:20:01,017] INFO [GroupCoordinator 2]: Preparing to rebalance group orders-consumers "
    "(kafka.coordinator.group.GroupCoordinator)",
    "[2025-03-14 09:20:01,233] INFO [Partition orders-7 broker=2] Log loaded for partition orders-7 with initial "
    "high watermark 88231 (kafka.cluster.Partition)",
    "[2025-03-14 09:20:04,902] WARN [ReplicaFetcher replicaId=2, leaderId=1, fetcherId=0] Connection to node 1 "
    "was disconnected (org.apache.kafka.clients.NetworkClient)",
]

# S3 server access log: not compressed; the time is [dd/Mon/yyyy:HH:MM:SS +zzzz].
S3_ACCESS_OWNER = "8d1f7a3c5e9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f"
S3_ACCESS = [
    f"{S3_ACCESS_OWNER} relay-test-assets [14/Mar/2025:09:31:07 +0000] 198.51.100.24 "
    f"arn:aws:iam::{ACCOUNT}:user/mila 7QK2M9X4B1R6T3W8 REST.GET.OBJECT img/logo.svg "
    '"GET /img/logo.svg HTTP/1.1" 200 - 5120 5120 18 17 "https://shop.example.net/" "Mozilla/5.0 (X11; Linux x86_64)" '
    "- dGhpcyBpcyBhbiBpbnZlbnRlZCBob3N0IGlkIGZvciB0ZXN0cw== SigV4 TLS_AES_128_GCM_SHA256 AuthHeader "
    "relay-test-assets.s3.eu-west-3.amazonaws.com TLSv1.3 - -",
    f"{S3_ACCESS_OWNER} relay-test-assets [14/Mar/2025:09:31:09 +0000] 203.0.113.9 - 4PX8N2Z6C0V5B9M1 "
    'REST.GET.OBJECT private/report.pdf "GET /private/report.pdf HTTP/1.1" 403 AccessDenied 243 - 9 - "-" '
    '"curl/8.5.0" - aW52ZW50ZWQgaG9zdCBpZCBudW1iZXIgdHdv - - - relay-test-assets.s3.eu-west-3.amazonaws.com - - -',
]


def guardduty_findings() -> list[dict[str, Any]]:
    def finding(i: int, kind: str, severity: float, created: str, updated: str) -> dict[str, Any]:
        fid = f"9ac4e1f0b2d3{i:02d}7e8f9a0b1c2d3e4f5a"
        return {"schemaVersion": "2.0", "accountId": ACCOUNT, "region": "eu-west-3", "partition": "aws", "id": fid,
                "arn": f"arn:aws:guardduty:eu-west-3:{ACCOUNT}:detector/4eb2c1d0a9f8/finding/{fid}", "type": kind,
                "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": f"i-0a1b2c3d4e5f6071{i}"}},
                "service": {"serviceName": "guardduty", "count": i + 1, "archived": False},
                "severity": severity, "createdAt": created, "updatedAt": updated,
                "title": f"Invented finding number {i}", "description": "Written for loki-relay's tests."}

    return [
        finding(0, "Recon:EC2/PortProbeUnprotectedPort", 2, "2025-03-14T08:10:00.000Z", "2025-03-14T09:40:12.345Z"),
        finding(1, "UnauthorizedAccess:EC2/SSHBruteForce", 5, "2025-03-14T08:30:00.000Z", "2025-03-14T09:41:00Z"),
        finding(2, "CryptoCurrency:EC2/BitcoinTool.B!DNS", 8, "2025-03-14T09:00:00.000Z", "2025-03-14T09:42:30.5Z"),
    ]


# An object under no known key layout: ingested line by line at the receive time.
UNKNOWN = b"exported at the end of the day\r\n\nrows: 1288\nstatus: complete"


def s3_objects() -> dict[str, bytes]:
    return {
        "s3/alb.log.gz": gz(("\n".join(ALB) + "\n").encode()),
        "s3/nlb.log.gz": gz(("\n".join(NLB) + "\n").encode()),
        "s3/vpcflow.log.gz": gz(("\n".join([VPC_HEADER, *VPC]) + "\n").encode()),
        "s3/cloudtrail.json.gz": gz(pretty({"Records": cloudtrail_records()})),
        "s3/cloudtrail-digest.json.gz": gz(json.dumps(CLOUDTRAIL_DIGEST).encode()),
        "s3/cloudfront.gz": gz("\n".join([*CLOUDFRONT_HEADER, *CLOUDFRONT]).encode()),  # no final newline
        "s3/waf.log.gz": gz(jsonl(waf_records())),
        "s3/msk.log.gz": gz(("\r\n".join(MSK[:2]) + "\r\n" + MSK[2]).encode()),
        "s3/s3access.log": ("\n".join(S3_ACCESS) + "\n").encode(),
        "s3/guardduty.jsonl.gz": gz(jsonl(guardduty_findings())),
        "s3/unknown.txt": UNKNOWN,
    }


# --- Lambda events ---------------------------------------------------------------------------

REGION = "eu-west-3"
KINESIS_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/app-events"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:log-drop"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:ops-alerts"
UPLOAD_BUCKET = "relay-test-uploads"


def cw_event_id(ms: int, n: int) -> str:
    return f"{ms:018d}{n:038d}"[:56]


def cloudwatch_logs_payload() -> dict[str, Any]:
    """A DATA_MESSAGE as a subscription filter delivers it to Lambda (inside awslogs.data)."""
    base = 1741944001250
    messages = ["GET /orders/1001 200 12ms", "GET /orders/1002 200 9ms", "POST /orders 500 230ms: db timeout"]
    return {"messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": "/ecs/orders-api",
            "logStream": "orders-api/web/4f1c2e3d5b6a7980", "subscriptionFilters": ["orders-to-loki"],
            "logEvents": [{"id": cw_event_id(base + i * 7, i), "timestamp": base + i * 7, "message": m}
                          for i, m in enumerate(messages)]}


def kinesis_cloudwatch_payload() -> dict[str, Any]:
    """A DATA_MESSAGE as a subscription filter writes it into a Kinesis stream."""
    base = 1741944100000
    return {"messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": "/aws/lambda/invoice-renderer",
            "logStream": "2025/03/14/[$LATEST]8a7b6c5d4e3f20119a8b7c6d5e4f3a2b",
            "subscriptionFilters": ["invoices-to-kinesis"],
            "logEvents": [
                {"id": cw_event_id(base + ms, i), "timestamp": base + ms, "message": message}
                for i, (ms, message) in enumerate([(0, "START RequestId: 0b1c2d3e Version: $LATEST"),
                                                    (40, "rendered invoice INV-20250314-0042"),
                                                    (41, "END RequestId: 0b1c2d3e")])
            ]}


def kinesis_record(data: bytes, seq: int, arrival: float) -> dict[str, Any]:
    return {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": f"pk-{seq}",
                        "sequenceNumber": f"4963{seq:052d}", "data": b64(data), "approximateArrivalTimestamp": arrival},
            "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"shardId-000000000002:4963{seq:052d}",
            "eventName": "aws:kinesis:record", "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/relay-kinesis",
            "awsRegion": REGION, "eventSourceARN": KINESIS_ARN}


def s3_record(bucket: str, key: str, name: str = "ObjectCreated:Put", size: int = 1024) -> dict[str, Any]:
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
            "eventTime": "2025-03-14T09:50:00.125Z",
            "eventName": name, "userIdentity": {"principalId": "AWS:AIDAZ7EXAMPLE4QRSTUV"},
            "requestParameters": {"sourceIPAddress": "198.51.100.24"},
            "responseElements": {"x-amz-request-id": "9F3E2D1C0B4A5968", "x-amz-id-2": "aW52ZW50ZWQgZm9yIHRlc3Rz"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "relay-new-objects",
                   "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A1B2C3EXAMPLE"},
                              "arn": f"arn:aws:s3:::{bucket}"},
                   "object": {"key": key, "size": size, "eTag": "0f343b0931126a20f133d67c2b018a3b",
                              "sequencer": "0067D3F5C8A1B2C3D4"}}}


def generated_tags_event() -> dict[str, Any]:
    """Event version 2.3 with the bucket's awsGeneratedTags, and a CloudTrail key without the account prefix."""
    bucket = f"org-trail-logs-{ACCOUNT}-eu-west-3"
    key = f"AWSLogs/{ACCOUNT}/CloudTrail/eu-west-3/2025/03/14/trail-export_CloudTrail_eu-west-3.json.gz"
    rec = s3_record(bucket, key, size=2048)
    rec["eventVersion"] = "2.3"
    rec["s3"]["bucket"]["awsGeneratedTags"] = {
        "aws:cloudformation:stack-name": "org-logging",
        "aws:cloudformation:logical-id": "TrailBucket",
        "aws:cloudformation:stack-id": f"arn:aws:cloudformation:eu-west-3:{ACCOUNT}:stack/org-logging/5d4c3b2a",
    }
    return {"Records": [rec]}


def lambda_events() -> dict[str, bytes]:
    cw = cloudwatch_logs_payload()
    return {
        "events/cloudwatch-logs.json": pretty({"awslogs": {"data": b64(gz(json.dumps(cw).encode()))}}),
        # the decoded payload of kinesis-cloudwatch.json, for tests that wrap it themselves
        "events/cloudwatch-payload.json": pretty(kinesis_cloudwatch_payload()),
        "events/kinesis-plain.json": pretty({"Records": [
            kinesis_record(b"order 1001 shipped to warehouse B\n", 1, 1741944200.125),
            kinesis_record(b"order 1002 packed", 2, 1741944201.5),
        ]}),
        "events/kinesis-cloudwatch.json": pretty({"Records": [
            kinesis_record(gz(json.dumps(kinesis_cloudwatch_payload()).encode()), 3, 1741944100.9),
        ]}),
        "events/s3-notification.json": pretty({"Records": [
            s3_record(UPLOAD_BUCKET, "reports/Q1+summary+%282025%29.txt", size=41),  # AWS URL-encodes keys
        ]}),
        "events/s3-test-event.json": pretty({"Service": "Amazon S3", "Event": "s3:TestEvent",
                                             "Time": "2025-03-14T09:45:00.001Z", "Bucket": UPLOAD_BUCKET,
                                             "RequestId": "7E6D5C4B3A291807",
                                             "HostId": "aW52ZW50ZWQgaG9zdCBpZCBmb3IgYSB0ZXN0IGV2ZW50"}),
        "events/s3-generated-tags.json": pretty(generated_tags_event()),
        "events/sns.json": pretty({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0",
            "EventSubscriptionArn": f"{TOPIC_ARN}:1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
            "Sns": {"Type": "Notification", "MessageId": "6f5e4d3c-2b1a-4098-8765-43210fedcba9", "TopicArn": TOPIC_ARN,
                    "Subject": "disk usage", "Message": "disk /var at 91% on shop-web-2",
                    "Timestamp": "2025-03-14T09:55:10.250Z", "SignatureVersion": "1", "Signature": "aW52ZW50ZWQ=",
                    "SigningCertUrl": "https://sns.eu-west-3.amazonaws.com/invented.pem",
                    "UnsubscribeUrl": "https://sns.eu-west-3.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {}},
        }]}),
        "events/sqs.json": pretty({"Records": [
            {"messageId": f"2e1d0c9b-8a7f-4e6d-5c4b-3a29180716{i:02d}", "receiptHandle": f"AQEBinvented{i}",
             "body": body, "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(sent),
                                          "SenderId": "AIDAZ7EXAMPLE4QRSTUV",
                                          "ApproximateFirstReceiveTimestamp": str(sent + 15)},
             "messageAttributes": {}, "md5OfBody": "0" * 32, "eventSource": "aws:sqs", "eventSourceARN": QUEUE_ARN,
             "awsRegion": REGION}
            for i, (body, sent) in enumerate([("backup of db-main finished in 412s", 1741944400100),
                                              ("backup of db-replica finished in 388s", 1741944401200)])
        ]}),
        "events/eventbridge-s3.json": pretty({
            "version": "0", "id": "4d3c2b1a-0f9e-4d8c-b7a6-958473625140", "detail-type": "Object Created",
            "source": "aws.s3", "account": ACCOUNT, "time": "2025-03-14T10:00:00Z", "region": REGION,
            "resources": ["arn:aws:s3:::relay-test-drop"],
            "detail": {"version": "0", "bucket": {"name": "relay-test-drop"},
                       "object": {"key": "exports/2025-03-14/orders.csv", "size": 64, "etag": "1b2c3d4e5f",
                                  "sequencer": "0067D3F9A0B1C2D3E4"},
                       "request-id": "5A4B3C2D1E0F9A8B", "requester": ACCOUNT, "source-ip-address": "198.51.100.24",
                       "reason": "PutObject"}}),
    }


# --- Firehose HTTP-endpoint bodies -------------------------------------------------------------

FIREHOSE_CONTROL = "CWL CONTROL MESSAGE: Checking health of destination Firehose."


def firehose_body(request_id: str, ts_ms: int, records: list[str]) -> bytes:
    return pretty({"requestId": request_id, "timestamp": ts_ms, "records": [{"data": d} for d in records]})


def firehose_cw(msg_type: str, group: str, stream: str, events: list[tuple[int, str]]) -> str:
    doc = {"messageType": msg_type, "owner": ACCOUNT if msg_type == "DATA_MESSAGE" else "CloudwatchLogs",
           "logGroup": group, "logStream": stream, "subscriptionFilters": ["thumbs-to-firehose"] if group else [],
           "logEvents": [{"id": cw_event_id(ts, i), "timestamp": ts, "message": m} for i, (ts, m) in enumerate(events)]}
    return b64(gz(json.dumps(doc).encode()))


def lambda_log_events() -> list[tuple[int, str]]:
    base = 1741944600000
    rid = "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"
    return [
        (base, "INIT_START Runtime Version: python:3.12.v31\n"),
        (base + 180, f"START RequestId: {rid} Version: $LATEST\n"),
        (base + 181, "resizing uploads/cat.jpg to 256x256\n"),
        (base + 240, "wrote thumbs/cat-256.jpg (18211 bytes)\n"),
        (base + 242, f"END RequestId: {rid}\n"),
        (base + 242, f"REPORT RequestId: {rid}\tDuration: 61.70 ms\tBilled Duration: 62 ms\t"
                     "Memory Size: 256 MB\tMax Memory Used: 81 MB\t\n"),
    ]


def firehose_bodies() -> dict[str, bytes]:
    group, stream = "/aws/lambda/thumbnailer", "2025/03/14/[$LATEST]0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    control = firehose_cw("CONTROL_MESSAGE", "", "", [(1741944590000, FIREHOSE_CONTROL)])
    data = firehose_cw("DATA_MESSAGE", group, stream, lambda_log_events())
    readings = [{"sensor": "room-4", "celsius": 21.5, "ok": True},
                {"sensor": "room-5", "celsius": 29.25, "ok": False},
                {"sensor": "cellar", "celsius": 11.0, "ok": True}]
    return {
        "firehose/direct-put.json": firehose_body(
            "7d6c5b4a-3928-4716-a5f4-e3d2c1b0a998", 1741944700250,
            [b64(json.dumps(r, separators=(",", ":")).encode()) for r in readings]),
        "firehose/direct-put-text.json": firehose_body(
            "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d", 1741944701000, [b64(b"temperature alarm cleared in room 5")]),
        "firehose/cw-mixed.json": firehose_body("1f2e3d4c-5b6a-4798-8a9b-c0d1e2f3a4b5", 1741944610000, [control, data]),
        "firehose/cw-control.json": firehose_body("2a3b4c5d-6e7f-4809-9a1b-2c3d4e5f6a7b", 1741944591000, [control]),
        "firehose/cw-data.json": firehose_body("3b4c5d6e-7f80-4912-a3b4-c5d6e7f8091a", 1741944611000, [data]),
        # the second record is base64 cut short: it cannot be decoded
        "firehose/cw-control-and-bad.json": firehose_body("4c5d6e7f-8091-4a23-b4c5-d6e7f8091a2b", 1741944592000,
                                                          [control, data[: len(data) // 8 * 4 + 2]]),
    }


def everything() -> dict[str, bytes]:
    return {**s3_objects(), **lambda_events(), **firehose_bodies()}


def main(argv: list[str]) -> int:
    files = everything()
    if "--check" in argv:
        bad = [name for name, data in files.items()
               if not (HERE / name).is_file() or (HERE / name).read_bytes() != data]
        for name in bad:
            print(f"differs from make.py: tests/payloads/{name}", file=sys.stderr)
        return 1 if bad else 0
    for name, data in files.items():
        path = HERE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"wrote {len(files)} files under {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
