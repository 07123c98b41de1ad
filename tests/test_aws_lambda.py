"""The aws_lambda job end to end: Lambda events POSTed to a real relay process, S3 objects in a
moto server, entries checked in the Loki stand-in. Also the forwarder function against the relay."""

from __future__ import annotations

import base64
import gzip
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import orjson
import pytest

from relay.aws import s3logs
from relay.times import iso_ns
from tests import payloads
from tests.conftest import RelayProcess, free_port
from tests.loki_receiver import Receiver
from tests.payloads import ACCOUNT, load, s3_object

BUCKET = "logs"
REGION = "us-east-1"

KEYS = {
    **{name: key for name, key in payloads.KEYS.items() if name != "cloudtrail_digest"},
    # the access log again, gzipped, under a second key of the same layout
    "s3_access_gz": payloads.KEYS["s3_access"].replace("09-31-15-3C4D5E6F7A8B9C0D", "09-31-16-3C4D5E6F7A8B9C0E"),
}
KINESIS_ARN = f"arn:aws:kinesis:eu-west-3:{ACCOUNT}:stream/app-events"
# The objects that our event payloads name (s3-notification.json, eventbridge-s3.json), with their content.
UPLOADED = ("relay-test-uploads", "reports/Q1 summary (2025).txt", b"Q1 summary: revenue up 4%\n")
DROPPED = ("relay-test-drop", "exports/2025-03-14/orders.csv", b"order_id,total\n1001,19.90\n")


def _labels(log_type: str, source: str | None, owner: str | None) -> dict[str, str]:
    labels = {"log_type": log_type}
    if source is not None:
        labels["source"] = source
    if owner is not None:
        labels["owner"] = owner
    return labels


# (object, expected labels after the default rules, entries)
OBJECTS: dict[str, tuple[bytes, dict[str, str], int]] = {
    "alb": (s3_object("alb"), _labels("s3_lb", "shop-frontend", ACCOUNT), 3),
    "nlb": (s3_object("nlb"), _labels("s3_lb", "payments-nlb", ACCOUNT), 2),
    "vpc": (s3_object("vpc"), _labels("s3_vpc_flow", "fl-0e1d2c3b4a5f6e7d8", ACCOUNT), 3),
    "cloudtrail": (s3_object("cloudtrail"), _labels("s3_cloudtrail", "Vb7Lq2Xw9Rt4Kp1M", ACCOUNT), 3),
    "cloudfront": (s3_object("cloudfront"), _labels("s3_cloudfront", "E3ZK7EXAMPLE9Q", "cdn-logs"), 3),
    "waf": (s3_object("waf"), _labels("s3_waf", "shop-acl", ACCOUNT), 2),
    "msk": (s3_object("msk"),
            _labels("s3_msk", "orders-cluster-2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091-2", ACCOUNT), 3),
    "s3_access": (s3_object("s3_access"), _labels("s3_access", "relay-test-assets", ACCOUNT), 2),
    "s3_access_gz": (gzip.compress(s3_object("s3_access")), _labels("s3_access", "relay-test-assets", ACCOUNT), 2),
    "guardduty": (s3_object("guardduty"), _labels("s3_guardduty", None, ACCOUNT), 3),
    "unknown": (s3_object("unknown"), _labels("s3", None, None), 3),
}
STATIC = {"job": "aws", "env": "test", "bucket": BUCKET}


def expected_entries(name: str) -> list[tuple[int, str]]:
    data = OBJECTS[name][0]
    stats = s3logs.S3Stats()
    obj = s3logs.classify(BUCKET, KEYS[name])
    out = [e for c in s3logs.read_entries(obj, io.BytesIO(data), 0, stats=stats) for e in c]
    if name != "unknown":
        assert stats.ts_fallback == 0
    return out


# --- events -----------------------------------------------------------------------------------


def s3_record(key: str, bucket: str = BUCKET, name: str = "ObjectCreated:Put") -> dict[str, Any]:
    from urllib.parse import quote_plus

    return {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION, "eventTime": "2024-01-01T00:00:00Z",
            "eventName": name, "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                                      "object": {"key": quote_plus(key), "size": 1}}}


def s3_event(*keys: str, bucket: str = BUCKET) -> dict[str, Any]:
    return {"Records": [s3_record(k, bucket) for k in keys]}


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {"Records": [
        {"messageId": f"m{i}", "receiptHandle": "x", "body": body, "eventSource": "aws:sqs",
         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:logs-queue", "awsRegion": REGION,
         "attributes": {"SentTimestamp": "1700000000000"}}
        for i, body in enumerate(bodies)
    ]}


def sns_envelope(message: str) -> dict[str, Any]:
    return {"Type": "Notification", "MessageId": "x", "TopicArn": "arn:aws:sns:us-east-1:123456789012:logs",
            "Message": message, "Timestamp": "2024-01-01T00:00:00.000Z"}


def eventbridge_s3(key: str, bucket: str = BUCKET) -> dict[str, Any]:
    return {"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
            "time": "2024-01-01T00:00:00Z", "region": REGION, "resources": [],
            "detail": {"bucket": {"name": bucket}, "object": {"key": key}, "reason": "PutObject"}}


def cloudwatch_event(payload: dict[str, Any]) -> dict[str, Any]:
    return {"awslogs": {"data": base64.b64encode(gzip.compress(orjson.dumps(payload))).decode()}}


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[dict[str, Any]]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        s3 = boto3.client("s3", endpoint_url=url, region_name=REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        s3.create_bucket(Bucket=BUCKET)
        for name, (data, _, _) in OBJECTS.items():
            s3.put_object(Bucket=BUCKET, Key=KEYS[name], Body=data)
        for bucket, key, body in (UPLOADED, DROPPED):
            s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        yield {"url": url, "s3": s3, "port": port}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def rx() -> Iterator[Receiver]:
    r = Receiver.start(no_reject_old_samples=True, max_line_size=0)
    try:
        yield r
    finally:
        r.stop()


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_EC2_METADATA_DISABLED": "true"}


def lambda_config(receiver_url: str, port: int, endpoint: str, **block: Any) -> dict[str, Any]:
    job = {"server": {"http_listen_address": "127.0.0.1", "http_listen_port": port}, "labels": {"job": "aws"},
           "s3": {"endpoint_url": endpoint, "force_path_style": True, "region": REGION, "max_attempts": 1}, **block}
    return {
        "clients": [{"url": receiver_url, "batchwait": "50ms",
                     "backoff_config": {"min_period": "50ms", "max_period": "500ms"}}],
        "scrape_configs": [{"job_name": "aws", "aws_lambda": job}],
        "limits_config": {"reject_old_samples": False},  # the fixtures are years old; the stand-in takes them too
    }


class Relay:
    def __init__(self, proc: RelayProcess, port: int) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}/awslambda/api/v1/push"

    def post(self, event: Any, **kw: Any) -> httpx.Response:
        content = event if isinstance(event, bytes) else orjson.dumps(event)
        return httpx.post(self.url, content=content, headers={"Content-Type": "application/json"}, timeout=60, **kw)


def start(tmp: Path, config: dict[str, Any], port: int) -> Relay:
    return Relay(RelayProcess(tmp, config, [], AWS_ENV).wait_ready(), port)


@pytest.fixture(scope="module")
def relay(moto: dict[str, Any], rx: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    port = free_port()
    r = start(tmp_path_factory.mktemp("relay"), lambda_config(rx.url, port, moto["url"], extra_labels={"env": "test"}),
              port)
    try:
        yield r
    finally:
        r.proc.stop()


@pytest.fixture
def fresh(rx: Receiver) -> Receiver:
    rx.reset()
    return rx


def got(rx: Receiver, n: int) -> list[dict[str, Any]]:
    entries = rx.wait_for(n, timeout=20)
    assert len(entries) == n, [e["line"][:80] for e in entries]
    return entries


def pairs(entries: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(e["ts"], e["line"]) for e in entries]


# --- S3 types ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(OBJECTS))
def test_s3_object_types(relay: Relay, fresh: Receiver, name: str) -> None:
    data, labels, count = OBJECTS[name]
    want = expected_entries(name)
    assert len(want) == count
    r = relay.post(s3_event(KEYS[name]))
    assert r.status_code == 200, r.text
    assert r.json()["entries"] == len(want) and r.json()["s3_objects"] == 1
    entries = got(fresh, len(want))
    assert {tuple(sorted(e["labels"].items())) for e in entries} == {tuple(sorted({**STATIC, **labels}.items()))}
    if name == "unknown":  # receive time
        assert [e["line"] for e in entries] == ["exported at the end of the day", "rows: 1288", "status: complete"]
        assert relay.proc.metric("loki_relay_s3_unknown_keys_total", job="aws") >= 1
    else:
        assert pairs(entries) == want
    assert entries[0]["line"] == want[0][1] and entries[-1]["line"] == want[-1][1]
    assert relay.proc.metric("loki_relay_s3_objects_total", job="aws", log_type=labels["log_type"]) >= 1


def test_s3_timestamps_spot_checks(relay: Relay, fresh: Receiver) -> None:
    import calendar

    def utc(*t: int) -> int:
        return calendar.timegm((*t, 0, 0, 0)) * 10**9

    r = relay.post(s3_event(KEYS["vpc"], KEYS["guardduty"], KEYS["s3_access"]))
    assert r.status_code == 200 and r.json()["s3_objects"] == 3
    entries = got(fresh, 8)
    by_type: dict[str, list[int]] = {}
    for e in entries:
        by_type.setdefault(e["labels"]["log_type"], []).append(e["ts"])
    vpc_first_start = int((gzip.decompress(OBJECTS["vpc"][0]).decode().splitlines()[1]).split()[10])
    assert by_type["s3_vpc_flow"][0] == vpc_first_start * 10**9  # the `start` field
    assert by_type["s3_guardduty"] == [  # updatedAt
        utc(2025, 3, 14, 9, 40, 12) + 345_000_000, utc(2025, 3, 14, 9, 41, 0), utc(2025, 3, 14, 9, 42, 30) + 500_000_000,
    ]
    assert by_type["s3_access"] == [utc(2025, 3, 14, 9, 31, 7), utc(2025, 3, 14, 9, 31, 9)]


def test_plain_and_gzip_objects_give_the_same_entries(relay: Relay, fresh: Receiver) -> None:
    assert relay.post(s3_event(KEYS["s3_access"], KEYS["s3_access_gz"])).status_code == 200
    entries = got(fresh, 4)
    assert pairs(entries[:2]) == pairs(entries[2:]) == expected_entries("s3_access")


def test_multi_megabyte_object_and_a_1mb_line(relay: Relay, moto: dict[str, Any], fresh: Receiver) -> None:
    n = 60_000
    lines = [f"https 2022-01-24T00:{i // 1000 % 60:02d}:{i % 60:02d}.{i:06d}Z app/my-lb/abc 10.0.0.{i % 250}:1234 "
             f"10.0.1.1:80 0.001 0.002 0.000 200 200 34 366 \"GET https://example.com:443/item/{i} HTTP/1.1\" "
             f"\"curl/7.46.0\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2" for i in range(n)]
    data = ("\n".join(lines) + "\n").encode()
    assert len(data) > 10 << 20
    big_key = KEYS["alb"].replace("shop-frontend", "big-lb")
    moto["s3"].put_object(Bucket=BUCKET, Key=big_key, Body=gzip.compress(data, 1))
    long_line = "2022-01-24T00:00:00.000000Z " + "x" * (1 << 20)
    long_key = KEYS["alb"].replace("shop-frontend", "long-lb")
    moto["s3"].put_object(Bucket=BUCKET, Key=long_key, Body=long_line.encode())  # plain, no final newline
    r = relay.post(s3_event(big_key, long_key))
    assert r.status_code == 200, r.text
    assert r.json()["entries"] == n + 1
    entries = got(fresh, n + 1)
    big = [e for e in entries if e["labels"]["source"] == "big-lb"]
    assert [e["line"] for e in big[:2]] == lines[:2] and big[-1]["line"] == lines[-1] and len(big) == n
    assert big[0]["ts"] == iso_ns("2022-01-24T00:00:00.000000Z")
    assert big[-1]["ts"] == iso_ns(lines[-1].split()[1])
    (long,) = [e for e in entries if e["labels"]["source"] == "long-lb"]
    assert long["line"] == long_line and long["ts"] == iso_ns("2022-01-24T00:00:00Z")


# --- event kinds ------------------------------------------------------------------------------


def test_cloudwatch_subscription(relay: Relay, fresh: Receiver) -> None:
    doc = load("events/cloudwatch-logs.json")
    payload = orjson.loads(gzip.decompress(base64.b64decode(doc["awslogs"]["data"])))
    want = [(ev["timestamp"] * 10**6, ev["message"]) for ev in payload["logEvents"]]
    r = relay.post(doc)
    assert r.status_code == 200 and r.json()["kind"] == "cloudwatch" and r.json()["entries"] == len(want)
    entries = got(fresh, len(want))
    assert pairs(entries) == want
    assert entries[0]["labels"] == {"job": "aws", "env": "test", "log_type": "cloudwatch",
                                    "log_group": payload["logGroup"], "owner": payload["owner"]}


def test_cloudwatch_control_message_gives_nothing(relay: Relay, fresh: Receiver) -> None:
    r = relay.post(cloudwatch_event({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "",
                                     "logStream": "", "subscriptionFilters": [],
                                     "logEvents": [{"id": "1", "timestamp": 1, "message": "CWL CONTROL MESSAGE"}]}))
    assert r.status_code == 200 and r.json()["entries"] == 0 and r.json()["ignored"] == 1


def test_kinesis_raw_and_cloudwatch_payloads(relay: Relay, fresh: Receiver) -> None:
    doc = load("events/kinesis-plain.json")
    cw = load("events/cloudwatch-payload.json")
    record = json.loads(json.dumps(doc["Records"][0]))
    record["kinesis"]["data"] = base64.b64encode(gzip.compress(orjson.dumps(cw))).decode()
    doc["Records"].append(record)
    r = relay.post(doc)
    assert r.status_code == 200, r.text
    entries = got(fresh, 2 + len(cw["logEvents"]))
    raw = [e for e in entries if "log_group" not in e["labels"]]
    assert [(e["ts"], e["line"]) for e in raw] == [(1741944200125000000, "order 1001 shipped to warehouse B"),
                                                   (1741944201500000000, "order 1002 packed")]
    arn = KINESIS_ARN
    assert raw[0]["labels"] == {"job": "aws", "env": "test", "log_type": "kinesis", "source_arn": arn}
    cwe = [e for e in entries if "log_group" in e["labels"]]
    assert cwe[0]["labels"] == {"job": "aws", "env": "test", "log_type": "kinesis", "source_arn": arn,
                                "log_group": "/aws/lambda/invoice-renderer", "owner": ACCOUNT}
    assert [e["ts"] for e in cwe] == [1741944100000 * 10**6, 1741944100040 * 10**6, 1741944100041 * 10**6]


def test_s3_notification_fixture_and_test_event(relay: Relay, fresh: Receiver) -> None:
    r = relay.post(load("events/s3-notification.json"))  # key "reports/Q1+summary+%282025%29.txt" -> url-decoded
    assert r.status_code == 200, r.text
    (e,) = got(fresh, 1)
    assert e["line"] == "Q1 summary: revenue up 4%" and e["labels"] == {"job": "aws", "env": "test", "log_type": "s3",
                                                                         "bucket": "relay-test-uploads"}
    r = relay.post(load("events/s3-test-event.json"))
    assert r.status_code == 200 and r.json()["kind"] == "s3_test" and r.json()["entries"] == 0


def test_sns_and_sqs_plain_messages(relay: Relay, fresh: Receiver) -> None:
    r = relay.post(load("events/sns.json"))
    assert r.status_code == 200
    r = relay.post(load("events/sqs.json"))
    assert r.status_code == 200 and r.json()["batchItemFailures"] == []
    entries = got(fresh, 3)
    sns = [e for e in entries if e["labels"]["log_type"] == "sns"]
    assert [(e["line"], e["ts"]) for e in sns] == [("disk /var at 91% on shop-web-2",
                                                    iso_ns("2025-03-14T09:55:10.250Z"))]
    assert sns[0]["labels"]["source_arn"] == f"arn:aws:sns:eu-west-3:{ACCOUNT}:ops-alerts"
    sqs = [e for e in entries if e["labels"]["log_type"] == "sqs"]
    assert [e["line"] for e in sqs] == ["backup of db-main finished in 412s", "backup of db-replica finished in 388s"]
    assert [e["ts"] for e in sqs] == [1741944400100 * 10**6, 1741944401200 * 10**6]
    assert sqs[0]["labels"]["source_arn"] == f"arn:aws:sqs:eu-west-3:{ACCOUNT}:log-drop"


def test_eventbridge_s3_and_other(relay: Relay, fresh: Receiver) -> None:
    r = relay.post(load("events/eventbridge-s3.json"))
    assert r.status_code == 200 and r.json()["s3_objects"] == 1
    other = {"version": "0", "id": "7", "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
             "account": "123456789012", "time": "2024-03-01T12:00:00Z", "region": REGION, "resources": [],
             "detail": {"instance-id": "i-1", "state": "running"}}
    r = relay.post(other)
    assert r.status_code == 200 and r.json()["entries"] == 1
    entries = got(fresh, 3)
    assert [e["line"] for e in entries[:2]] == ["order_id,total", "1001,19.90"]
    assert entries[0]["labels"]["bucket"] == "relay-test-drop"
    assert orjson.loads(entries[2]["line"]) == other and entries[2]["ts"] == iso_ns("2024-03-01T12:00:00Z")
    assert entries[2]["labels"] == {"job": "aws", "env": "test", "log_type": "eventbridge", "source": "aws.ec2",
                                    "detail_type": "EC2 Instance State-change Notification"}


def test_wrappers_around_s3_notifications(relay: Relay, fresh: Receiver) -> None:
    note = orjson.dumps(s3_event(KEYS["alb"])).decode()
    bodies = [
        note,  # SQS <- S3
        orjson.dumps(sns_envelope(note)).decode(),  # SQS <- SNS <- S3
        orjson.dumps(eventbridge_s3(KEYS["alb"])).decode(),  # SQS <- EventBridge
    ]
    r = relay.post(sqs_event(*bodies))
    assert r.status_code == 200 and r.json()["batchItemFailures"] == [] and r.json()["s3_objects"] == 3
    sns = {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
                        "Sns": {"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": note,
                                "Timestamp": "2024-01-01T00:00:00Z"}}]}
    assert relay.post(sns).status_code == 200  # SNS -> S3
    want = expected_entries("alb")
    entries = got(fresh, 4 * len(want))
    assert pairs(entries) == want * 4
    assert all(e["labels"]["source"] == "shop-frontend" for e in entries)


def test_sqs_partial_failure_lists_only_the_failed_message(relay: Relay, fresh: Receiver) -> None:
    ok1 = orjson.dumps(s3_event(KEYS["alb"])).decode()
    missing = orjson.dumps(s3_event("AWSLogs/123456789012/no/such/key.log")).decode()
    ok2 = orjson.dumps(s3_event(KEYS["msk"])).decode()
    r = relay.post(sqs_event(ok1, missing, ok2, '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}'))
    assert r.status_code == 200, r.text
    assert r.json()["batchItemFailures"] == [{"itemIdentifier": "m1"}]
    assert any("m3" in err for err in r.json()["errors"])  # malformed: dropped, not retried
    entries = got(fresh, OBJECTS["alb"][2] + OBJECTS["msk"][2])
    assert {e["labels"]["log_type"] for e in entries} == {"s3_lb", "s3_msk"}


def test_malformed_events_are_400(relay: Relay) -> None:
    for body in (b"not json", b"[]", b'{"hello": "world"}', b'{"awslogs": {"data": "!!!"}}',
                 b'{"Records": [{"eventSource": "aws:nope"}]}', orjson.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]})):
        r = relay.post(body)
        assert r.status_code == 400, (body, r.status_code, r.text)


def test_missing_object_is_502(relay: Relay) -> None:
    r = relay.post(s3_event("AWSLogs/123456789012/nothing-here.log"))
    assert r.status_code == 502 and "NoSuchKey" in r.text
    assert relay.proc.metric("loki_relay_s3_object_errors_total", job="aws", reason="s3") >= 1


def test_s3_down_is_502(rx: Receiver, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    port = free_port()
    relay = start(tmp_path, lambda_config(rx.url, port, dead), port)
    try:
        r = relay.post(s3_event(KEYS["alb"]))
        assert r.status_code == 502 and "cannot read S3 object" in r.text
        r = relay.post(sqs_event(orjson.dumps(s3_event(KEYS["alb"])).decode(), "plain text"))
        assert r.status_code == 200 and r.json()["batchItemFailures"] == [{"itemIdentifier": "m0"}]
    finally:
        relay.proc.stop()


def test_extra_drop_and_relabel_order(moto: dict[str, Any], fresh: Receiver, tmp_path: Path) -> None:
    port = free_port()
    cfg = lambda_config(fresh.url, port, moto["url"], extra_labels="team,ops,__aws_cloudwatch_owner,override",
                        omit_extra_labels_prefix=True, drop_labels=["__aws_cloudwatch_owner"],
                        relabel_configs=[
                            {"source_labels": ["__aws_cloudwatch_log_group"], "target_label": "group"},
                            {"source_labels": ["__aws_cloudwatch_owner"], "target_label": "owner"},
                            {"source_labels": ["team"], "target_label": "team2"},
                        ])
    relay = start(tmp_path, cfg, port)
    try:
        r = relay.post(load("events/cloudwatch-logs.json"))
        assert r.status_code == 200
        entries = got(fresh, r.json()["entries"])
        # extra labels override the source's, drop_labels run after them, relabel_configs after that
        # (the extra __aws_cloudwatch_owner would have won over the source's, but drop_labels removed it)
        assert entries[0]["labels"] == {"job": "aws", "group": "/ecs/orders-api", "team": "ops", "team2": "ops"}
    finally:
        relay.proc.stop()


def test_gzip_request_body_and_tenant(relay: Relay, fresh: Receiver) -> None:
    doc = load("events/cloudwatch-logs.json")
    r = httpx.post(relay.url, content=gzip.compress(orjson.dumps(doc)),
                   headers={"Content-Type": "application/json", "Content-Encoding": "gzip", "X-Scope-OrgID": "t1"})
    assert r.status_code == 200
    assert got(fresh, r.json()["entries"])[0]["tenant"] == "t1"


# --- the forwarder ------------------------------------------------------------------------------


def test_forwarder(relay: Relay, fresh: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from relay.aws import forwarder

    monkeypatch.setenv("RELAY_URL", relay.url.rsplit("/awslambda", 1)[0])  # bare host:port gets the path
    doc = load("events/cloudwatch-logs.json")
    assert forwarder.handler(doc, None) is None
    got(fresh, 3)
    missing = orjson.dumps(s3_event("AWSLogs/1/missing.log")).decode()
    answer = forwarder.handler(sqs_event("plain", missing), None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    got(fresh, 4)
    with pytest.raises(forwarder.ForwardError, match="400"):
        forwarder.handler({"hello": "world"}, None)
    with pytest.raises(forwarder.ForwardError, match="502"):
        forwarder.handler(s3_event("AWSLogs/1/missing.log"), None)
    big = cloudwatch_event({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "g", "logStream": "s",
                            "subscriptionFilters": [], "logEvents": [
                                {"id": str(i), "timestamp": 1700000000000 + i, "message": f"m{i} " + "y" * 200}
                                for i in range(2000)]})
    big["pad"] = "z" * 100_000  # over the gzip threshold (unknown keys are ignored)
    fresh.reset()
    assert forwarder.handler(big, None) is None
    assert len(got(fresh, 2000)) == 2000
    monkeypatch.setenv("RELAY_USERNAME", "u")
    with pytest.raises(forwarder.ForwardError, match="go together"):
        forwarder.handler(doc, None)
    monkeypatch.delenv("RELAY_USERNAME")
    monkeypatch.setenv("RELAY_URL", "http://127.0.0.1:1")
    with pytest.raises(forwarder.ForwardError, match="cannot reach"):
        forwarder.handler(doc, None)


def test_identical_lines_of_an_unknown_layout_get_distinct_times(relay: Relay, moto: dict[str, Any],
                                                                  fresh: Receiver) -> None:
    """Loki merges entries of equal stream, timestamp and line: stamped with one receive time,
    three identical lines would be stored once. 1 ns apart, all three stay, and so do the
    identical lines of a second object in the same event."""
    moto["s3"].put_object(Bucket=BUCKET, Key="misc/same-1.txt", Body=b"same\nsame\nsame\n")
    moto["s3"].put_object(Bucket=BUCKET, Key="misc/same-2.txt", Body=b"same\nsame\nsame\n")
    r = relay.post(s3_event("misc/same-1.txt", "misc/same-2.txt"))
    assert r.status_code == 200, r.text
    entries = got(fresh, 6)
    assert [e["line"] for e in entries] == ["same"] * 6
    stamps = sorted(e["ts"] for e in entries)
    assert len(set(stamps)) == 6 and stamps[-1] - stamps[0] < 1_000_000_000  # distinct, and still receive time
