"""The in-process Lambda handler (lambda-promtail drop-in) against the Loki stand-in and moto;
the aws_lambda config block; the 503 answer under backpressure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest

from relay.aws import lambda_handler
from relay.aws import settings as aws_lambda
from relay.aws.lambda_handler import LokiError, SettingsError, load_settings
from relay.config import ConfigError, parse_config
from relay.sources.http import aws_lambda as aws_lambda_http
from tests.loki_receiver import Receiver
from tests.payloads import ACCOUNT, load
from tests.test_aws_lambda import (  # noqa: F401  (fixtures)
    AWS_ENV,
    KEYS,
    OBJECTS,
    REGION,
    expected_entries,
    moto,
    rx,
    s3_event,
    sqs_event,
)


class Context:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def get_remaining_time_in_millis(self) -> int:
        return self.ms


@pytest.fixture
def env(moto: dict[str, Any], rx: Receiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:  # noqa: F811
    rx.reset()
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    for k in ("USERNAME", "PASSWORD", "BEARER_TOKEN", "TENANT_ID", "KEEP_STREAM", "BATCH_SIZE", "EXTRA_LABELS",
              "OMIT_EXTRA_LABELS_PREFIX", "DROP_LABELS", "RELABEL_CONFIGS", "SKIP_TLS_VERIFY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto["url"])
    monkeypatch.setenv("WRITE_ADDRESS", rx.url)
    monkeypatch.setenv("PRINT_LOG_LINE", "false")
    monkeypatch.setenv("EXTRA_LABELS", "env,test")
    lambda_handler.reset()
    yield monkeypatch
    lambda_handler.reset()


def test_cloudwatch_event(env: pytest.MonkeyPatch, rx: Receiver) -> None:  # noqa: F811
    env.setenv("KEEP_STREAM", "true")
    env.setenv("TENANT_ID", "team-a")
    env.setenv("USERNAME", "user")
    env.setenv("PASSWORD", "pw")
    doc = load("events/cloudwatch-logs.json")
    assert lambda_handler.handler(doc, None) is None
    entries = rx.entries()  # synchronous: already there
    assert [(e["ts"], e["line"]) for e in entries] == [(1741944001250 * 10**6, "GET /orders/1001 200 12ms"),
                                                       (1741944001257 * 10**6, "GET /orders/1002 200 9ms"),
                                                       (1741944001264 * 10**6, "POST /orders 500 230ms: db timeout")]
    assert entries[0]["labels"] == {"env": "test", "log_type": "cloudwatch", "log_group": "/ecs/orders-api",
                                    "log_stream": "orders-api/web/4f1c2e3d5b6a7980", "owner": ACCOUNT}
    assert entries[0]["tenant"] == "team-a"
    req = rx.requests()[-1]
    assert req["headers"]["authorization"].startswith("Basic ")
    assert req["headers"]["content-type"] == "application/x-protobuf"


@pytest.mark.parametrize("name", ["alb", "nlb", "vpc", "cloudtrail", "cloudfront", "waf", "msk", "s3_access", "guardduty"])
def test_s3_types(env: pytest.MonkeyPatch, rx: Receiver, name: str) -> None:  # noqa: F811
    assert lambda_handler.handler(s3_event(KEYS[name]), None) is None
    entries = rx.entries()
    assert [(e["ts"], e["line"]) for e in entries] == expected_entries(name)
    want = {k: v for k, v in OBJECTS[name][1].items()}
    assert entries[0]["labels"] == {**want, "env": "test", "bucket": "logs"}
    assert entries[0]["labels"]["env"] == "test" and entries[0]["labels"]["bucket"] == "logs"


def test_relabel_configs_drop_labels_and_prefix(env: pytest.MonkeyPatch, rx: Receiver) -> None:  # noqa: F811
    env.setenv("OMIT_EXTRA_LABELS_PREFIX", "TRUE")
    env.setenv("DROP_LABELS", "__aws_s3_lb_owner")
    env.setenv("RELABEL_CONFIGS", orjson.dumps([
        {"source_labels": ["__aws_s3_lb"], "target_label": "lb"},
        {"source_labels": ["__aws_s3_lb_owner"], "target_label": "account"},
    ]).decode())
    lambda_handler.handler(s3_event(KEYS["alb"]), None)
    assert rx.entries()[0]["labels"] == {"env": "test", "lb": "shop-frontend"}


def test_batch_size_splits_requests(env: pytest.MonkeyPatch, rx: Receiver, moto: dict[str, Any]) -> None:  # noqa: F811
    env.setenv("BATCH_SIZE", "20000")
    lines = "".join(f"2024-01-01T00:00:{i % 60:02d}Z line {i} {'x' * 100}\n" for i in range(5000))
    key = KEYS["alb"].replace("shop-frontend", "batched-lb")
    moto["s3"].put_object(Bucket="logs", Key=key, Body=lines.encode())
    lambda_handler.handler(s3_event(key), None)
    assert rx.stats()["entries"] == 5000
    assert len(rx.requests()) >= 5  # 1000-line chunks of ~130 KB each go out on their own


def test_sqs_partial_failure(env: pytest.MonkeyPatch, rx: Receiver) -> None:  # noqa: F811
    ok = orjson.dumps(s3_event(KEYS["alb"])).decode()
    missing = orjson.dumps(s3_event("AWSLogs/1/missing")).decode()
    answer = lambda_handler.handler(sqs_event(ok, missing, "plain line"), None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert sorted(e["line"] for e in rx.entries())[-1] == "plain line"
    assert rx.stats()["entries"] == OBJECTS["alb"][2] + 1


def test_loki_failures_fail_the_invocation(env: pytest.MonkeyPatch, rx: Receiver) -> None:  # noqa: F811
    doc = load("events/cloudwatch-logs.json")
    rx.fail(500, count=1)  # retried
    lambda_handler.handler(doc, Context(60_000))
    assert rx.stats()["entries"] == 3  # the event's three log events, once
    rx.fail(400, count=1)  # not retried
    with pytest.raises(LokiError, match="status=400"):
        lambda_handler.handler(doc, Context(60_000))
    rx.fail(503, count=None)  # retried until the invocation would time out
    with pytest.raises(LokiError, match="status=503"):
        lambda_handler.handler(doc, Context(6_000))
    answer = lambda_handler.handler(sqs_event("a", "b"), Context(6_000))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    rx.clear_faults()


@pytest.mark.parametrize(
    ("env_vars", "message"),
    [
        ({"WRITE_ADDRESS": ""}, "WRITE_ADDRESS not set"),
        ({"WRITE_ADDRESS": "ftp://x"}, "http:// or https://"),
        ({"USERNAME": "u"}, "both USERNAME and PASSWORD"),
        ({"PASSWORD": "p"}, "both USERNAME and PASSWORD"),
        ({"USERNAME": "u", "PASSWORD": "p", "BEARER_TOKEN": "t"}, "mutually exclusive"),
        ({"BATCH_SIZE": "big"}, "BATCH_SIZE"),
        ({"BATCH_SIZE": "0"}, "BATCH_SIZE"),
        ({"KEEP_STREAM": "yes"}, "KEEP_STREAM must be true or false"),
        ({"SKIP_TLS_VERIFY": "1"}, "SKIP_TLS_VERIFY"),
        ({"PRINT_LOG_LINE": "no"}, "PRINT_LOG_LINE"),
        ({"EXTRA_LABELS": "a,b,c"}, "even number"),
        ({"EXTRA_LABELS": "bad-name,x"}, "invalid label name"),
        ({"DROP_LABELS": "ok,not ok"}, "invalid label name"),
        ({"RELABEL_CONFIGS": "[{"}, "RELABEL_CONFIGS"),
        ({"RELABEL_CONFIGS": '[{"action": "explode"}]'}, "RELABEL_CONFIGS"),
        ({"RELABEL_CONFIGS": '{"a": 1}'}, "RELABEL_CONFIGS"),
        ({"PASSWORD": "arn:aws:iam::1:role/x", "USERNAME": "u"}, "only Secrets Manager"),
        ({"TENANT_ID": "team/a"}, "TENANT_ID: .*unsupported character"),  # Loki would refuse every push
        ({"TENANT_ID": "x" * 151}, "TENANT_ID: tenant id too long"),
    ],
)
def test_invalid_settings(env_vars: dict[str, str], message: str) -> None:
    base = {"WRITE_ADDRESS": "http://loki:3100/loki/api/v1/push"}
    with pytest.raises(SettingsError, match=message):
        load_settings({**base, **env_vars})


def test_invalid_settings_fail_the_first_call(env: pytest.MonkeyPatch) -> None:
    env.setenv("BATCH_SIZE", "lots")
    with pytest.raises(SettingsError):
        lambda_handler.handler({"hello": 1}, None)


def test_yaml_relabel_configs_and_defaults() -> None:
    s = load_settings({"WRITE_ADDRESS": "https://loki/x", "RELABEL_CONFIGS": "- source_labels: [a]\n  target_label: b\n"})
    assert s.has_relabel and len(s.relabel) == 1 and s.batch_size == 131072 and s.print_log_line
    s = load_settings({"WRITE_ADDRESS": "https://loki/x", "EXTRA_LABELS": "a,1,b,2"})
    assert s.lambda_settings.extra_labels == {"__extra_a": "1", "__extra_b": "2"} and not s.has_relabel


def test_secret_arns_are_resolved(moto: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto["url"])
    sm = boto3.client("secretsmanager", region_name=REGION)
    arn = sm.create_secret(Name="loki-password", SecretString="s3cret")["ARN"]
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/loki/token", Value="tok", Type="SecureString")
    param_arn = f"arn:aws:ssm:{REGION}:123456789012:parameter/loki/token"
    s = load_settings({"WRITE_ADDRESS": "https://loki/x", "USERNAME": "u", "PASSWORD": arn})
    assert s.password == "s3cret"
    s = load_settings({"WRITE_ADDRESS": "https://loki/x", "BEARER_TOKEN": param_arn})
    assert s.bearer_token == "tok"


# --- the job block ------------------------------------------------------------------------------


def job(block: dict[str, Any], **outer: Any) -> dict[str, Any]:
    return {"scrape_configs": [{"job_name": "aws", "aws_lambda": block, **outer}]}


def test_block_parsing() -> None:
    cfg = parse_config(job({"extra_labels": "a,1,b,2", "drop_labels": "x,y", "keep_stream": True,
                            "s3": {"region": "eu-west-1", "endpoint_url": "http://minio:9000", "force_path_style": True}}))
    j = cfg.jobs[0]
    s = j.settings
    assert j.use_incoming_timestamp and j.listen.http_listen_port == aws_lambda.DEFAULT_PORT
    assert s.extra_labels == {"__extra_a": "1", "__extra_b": "2"} and s.drop_labels == ("x", "y") and s.keep_stream
    assert s.s3.region == "eu-west-1" and s.s3.force_path_style
    s = parse_config(job({"extra_labels": {"a": "1"}, "omit_extra_labels_prefix": True,
                          "drop_labels": ["z"]})).jobs[0].settings
    assert s.extra_labels == {"a": "1"} and s.drop_labels == ("z",)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"extra_labels": "a,1,b"}, "even number"),
        ({"extra_labels": 5}, "extra_labels"),
        ({"drop_labels": ["bad name"]}, "invalid label name"),
        ({"keep_stream": "yes"}, "keep_stream"),
        ({"s3": {"regoin": "x"}}, "unknown configuration key"),
        ({"s3": {"access_key_id": "a"}}, "go together"),
        ({"s3": {"endpoint_url": "minio:9000"}}, "endpoint_url"),
        ({"s3": {"max_attempts": 0}}, "max_attempts"),
    ],
)
def test_block_errors(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(job(block))


# --- 503 under backpressure ------------------------------------------------------------------------


def test_backpressure_is_503_and_fails_sqs_messages() -> None:
    import asyncio

    import httpx
    from starlette.applications import Starlette

    from relay.config import JobConfig, ServerConfig
    from relay.ingest import Backpressure

    class FullIngest:
        job = JobConfig(name="full", kind="aws_lambda", listen=ServerConfig())

        async def check(self, tenant: str, size: int = 0) -> Any:
            from relay.sink.fanout import Ticket

            return Ticket(None, tenant, 0)  # type: ignore[arg-type]  (room: the refusal comes at push)

        async def push(self, *a: Any, **kw: Any) -> Any:
            raise Backpressure("too much buffered", 3)

    app = Starlette(routes=aws_lambda_http.routes(FullIngest()))  # type: ignore[arg-type]
    doc = load("events/cloudwatch-logs.json")

    async def run() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://relay") as client:
            return (await client.post(aws_lambda_http.PATH, content=orjson.dumps(doc)),
                    await client.post(aws_lambda_http.PATH, content=orjson.dumps(sqs_event("a", "b"))))

    r, sqs = asyncio.run(run())
    assert r.status_code == 503 and r.headers["retry-after"] == "3"
    assert sqs.status_code == 200
    assert sqs.json()["batchItemFailures"] == [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]


# --- the decoder's time bounds reach the processor ---------------------------------------------


def test_the_route_passes_each_push_its_entries_time_bounds() -> None:
    """The time window trusts the bounds a push carries: each push (the event's streams, each SQS
    message's) gets exactly its own entries' earliest and latest time."""
    import asyncio
    import base64
    import gzip

    import httpx
    from starlette.applications import Starlette

    from relay.config import JobConfig, ServerConfig
    from relay.pipeline import Outcome

    pushes: list[tuple[list[int], tuple[int, int] | None]] = []

    class RecordingIngest:
        job = JobConfig(name="rec", kind="aws_lambda", listen=ServerConfig(), use_incoming_timestamp=True)

        async def check(self, tenant: str, size: int = 0) -> Any:
            from relay.sink.fanout import Ticket

            return Ticket(None, tenant, 0)  # type: ignore[arg-type]

        async def push(self, streams: list[Any], tenant: str, receive_ns: int, ticket: Any = None,
                       times: tuple[int, int] | None = None) -> Outcome:
            stamps = [e.timestamp.seconds * 10**9 + e.timestamp.nanos for s in streams for e in s.entries.entries]
            pushes.append((stamps, times))
            return Outcome(entries=len(stamps))

    def awslogs(*ms: int) -> dict[str, Any]:
        doc = {"messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": "/g", "logStream": "s",
               "subscriptionFilters": ["f"],
               "logEvents": [{"id": str(i), "timestamp": t, "message": f"e{i}"} for i, t in enumerate(ms)]}
        return {"awslogs": {"data": base64.b64encode(gzip.compress(orjson.dumps(doc))).decode()}}

    app = Starlette(routes=aws_lambda_http.routes(RecordingIngest()))  # type: ignore[arg-type]
    cloudwatch = awslogs(1_700_000_000_500, 1_699_999_999_000, 1_700_000_002_250)
    sqs = sqs_event(orjson.dumps(awslogs(1_700_000_100_000, 1_700_000_000_001)).decode(), "plain text body")

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://relay") as client:
            return [await client.post(aws_lambda_http.PATH, content=orjson.dumps(doc)) for doc in (cloudwatch, sqs)]

    assert [r.status_code for r in asyncio.run(run())] == [200, 200]
    ms = 1_000_000
    assert pushes == [
        ([1_700_000_000_500 * ms, 1_699_999_999_000 * ms, 1_700_000_002_250 * ms],
         (1_699_999_999_000 * ms, 1_700_000_002_250 * ms)),
        ([1_700_000_100_000 * ms, 1_700_000_000_001 * ms], (1_700_000_000_001 * ms, 1_700_000_100_000 * ms)),
        ([1_700_000_000_000 * ms], (1_700_000_000_000 * ms, 1_700_000_000_000 * ms)),  # at its SentTimestamp
    ]
