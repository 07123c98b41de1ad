"""Issue 9, items 5 and 6 over HTTP: what Loki refuses is refused at intake with 400 and a reason;
what Loki takes (numeric label values) is taken as Loki takes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import RelayProcess, free_port
from tests.loki_receiver import Receiver


class Env:
    def __init__(self, rel: RelayProcess, rx: Receiver, push: int, aws: int, firehose: int) -> None:
        self.rel, self.rx, self.push, self.aws, self.firehose = rel, rx, push, aws, firehose

    def post_push(self, body: bytes, path: str = "/loki/api/v1/push", **headers: str) -> httpx.Response:
        return httpx.post(f"http://127.0.0.1:{self.push}{path}", content=body,
                          headers={"Content-Type": "application/json", **headers}, timeout=10)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    rx = Receiver.start()
    push, aws, firehose = free_port(), free_port(), free_port()

    def server(port: int) -> dict[str, Any]:
        return {"server": {"http_listen_address": "127.0.0.1", "http_listen_port": port}}

    config = {
        "clients": [{"url": rx.url, "batchwait": "100ms"}],
        "scrape_configs": [
            {"job_name": "push", "loki_push_api": server(push)},
            {"job_name": "aws", "aws_lambda": server(aws)},
            {"job_name": "firehose", "aws_firehose": server(firehose)},
        ],
    }
    rel = RelayProcess(tmp_path_factory.mktemp("relay"), config, [], None)
    try:
        rel.wait_ready()
        yield Env(rel, rx, push, aws, firehose)
    finally:
        rel.stop()
        rx.stop()


# ---- item 5: legacy timestamps out of range ----------------------------------------------------------


@pytest.mark.parametrize("ts,reason", [
    ("2024-13-01T00:00:00Z", "expected RFC3339"),
    ("0000-01-01T00:00:00Z", "expected RFC3339"),
    ("2024-01-01T00:00:00+99:99", "expected RFC3339"),
    ("9999-12-31T23:59:59Z", "out of range"),
    ("1969-12-31T23:59:59Z", "out of range"),
])
def test_legacy_timestamp_out_of_range_is_400_with_the_reason(env: Env, ts: str, reason: str) -> None:
    env.rx.reset()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = orjson.dumps({"streams": [
        {"labels": '{app="bad"}', "entries": [{"ts": ts, "line": "refused"}]},
        {"labels": '{app="good"}', "entries": [{"ts": now, "line": "kept"}]},
    ]})
    r = env.post_push(body, "/api/prom/push")
    assert r.status_code == 400, r.text
    assert ts[:20] in r.text and reason in r.text
    assert [e["line"] for e in env.rx.wait_for(1)] == ["kept"]  # the valid stream is still delivered


# ---- item 6: Loki-exact JSON ------------------------------------------------------------------------


def test_json_label_values_that_are_not_strings_are_stringified_as_loki_does(env: Env) -> None:
    env.rx.reset()
    ts = str(time.time_ns())
    # What pino-loki's propsToLabels sends: the props' JSON types as they are.
    body = b'{"streams":[{"stream":{"job":"pino","pid":4242,"ratio":1.5,"ok":true,"off":false,"gone":null},' \
           b'"values":[["' + ts.encode() + b'","hello"]]}]}'
    r = env.post_push(body)
    assert r.status_code == 204, r.text
    [entry] = env.rx.wait_for(1)
    assert entry["labels"] == {"job": "pino", "pid": "4242", "ratio": "1.5", "ok": "true", "off": "false",
                               "gone": "null"}


@pytest.mark.parametrize("ts", ["1700000000000000000", "1.7e18", "true", "null", '["1"]'])
def test_a_json_timestamp_that_is_not_a_string_refuses_its_stream_as_loki_does(env: Env, ts: str) -> None:
    env.rx.reset()
    now = str(time.time_ns())
    body = ('{"streams":[{"stream":{"app":"numeric"},"values":[[' + ts + ',"refused"]]},'
            '{"stream":{"app":"string"},"values":[["' + now + '","kept"]]}]}').encode()
    r = env.post_push(body)
    assert r.status_code == 400, r.text
    assert "stream 0" in r.text and "expected Unix nanoseconds as a string" in r.text
    assert [e["line"] for e in env.rx.wait_for(1)] == ["kept"]


# Non-ASCII digits: Python's int() reads "١٧٠٠..." (Arabic-Indic) and "１７００..." (full width); Go does not.
@pytest.mark.parametrize("ts", ["1_700_000_000_000_000_000", " 1700000000000000000", "0x10",
                                "١٧٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠", "１７００００００００００００００００００"])
def test_a_timestamp_string_go_would_not_parse_is_refused(env: Env, ts: str) -> None:
    body = orjson.dumps({"streams": [{"stream": {"app": "x"}, "values": [[ts, "refused"]]}]})
    r = env.post_push(body)
    assert r.status_code == 400 and "expected Unix nanoseconds" in r.text, r.text


# ---- item 6: Firehose retries are the same id AND the same body -----------------------------------------


def firehose_post(env: Env, rid: str, lines: list[str]) -> httpx.Response:
    import base64
    body = orjson.dumps({"requestId": rid, "timestamp": time.time_ns() // 1_000_000,
                         "records": [{"data": base64.b64encode(ln.encode()).decode()} for ln in lines]})
    return httpx.post(f"http://127.0.0.1:{env.firehose}/awsfirehose/api/v1/push", content=body,
                      headers={"X-Amz-Firehose-Request-Id": rid, "Content-Type": "application/json"}, timeout=10)


def test_firehose_dedups_on_request_id_and_body(env: Env) -> None:
    env.rx.reset()
    dupes = env.rel.metric("loki_relay_firehose_duplicate_requests_total", job="firehose")
    rid = "5f6c1a5e-0000-4000-8000-000000000001"
    first = firehose_post(env, rid, ["one", "two"])
    assert first.status_code == 200, first.text
    assert sorted(e["line"] for e in env.rx.wait_for(2)) == ["one", "two"]
    # A retry (same id, same body): answered 200 again, not ingested again.
    assert firehose_post(env, rid, ["one", "two"]).status_code == 200
    assert env.rel.metric("loki_relay_firehose_duplicate_requests_total", job="firehose") == dupes + 1
    # The same id with other records is another request: ingested.
    assert firehose_post(env, rid, ["three"]).status_code == 200
    entries = env.rx.wait_for(3)
    time.sleep(0.5)  # a wrongly ingested retry would have arrived by now (batchwait 100ms)
    assert sorted(e["line"] for e in env.rx.entries()) == ["one", "three", "two"], entries


# ---- item 4: tenant ids on the AWS routes --------------------------------------------------------------


@pytest.mark.parametrize(("tenant", "why"), [("x" * 151, "too long"), ("..", "not allowed"), ("a/b", "'/'"),
                                             ("x" * 100_000, "too long")])
def test_lambda_route_refuses_a_tenant_loki_would_refuse(env: Env, tenant: str, why: str) -> None:
    before = env.rel.metric("loki_relay_lambda_events_total", job="aws")
    event = {"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": "hello"}]}
    r = httpx.post(f"http://127.0.0.1:{env.aws}/awslambda/api/v1/push", content=orjson.dumps(event),
                   headers={"X-Scope-OrgID": tenant}, timeout=10)
    assert r.status_code == 400 and why in r.text, r.text
    assert env.rel.metric("loki_relay_lambda_events_total", job="aws") == before  # refused before decoding


def test_lambda_route_takes_a_valid_tenant(env: Env) -> None:
    env.rx.reset()
    event = {"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": "hello"}]}
    r = httpx.post(f"http://127.0.0.1:{env.aws}/awslambda/api/v1/push", content=orjson.dumps(event),
                   headers={"X-Scope-OrgID": "team-a.prod"}, timeout=10)
    assert r.status_code == 200, r.text
    assert [e["line"] for e in env.rx.wait_for(1, tenant="team-a.prod")] == ["hello"]


@pytest.mark.parametrize(("attributes", "header", "why"), [
    ({"tenant_id": "a|b"}, None, "'|'"),
    ({"tenant_id": "y" * 151}, None, "too long"),
    (None, ".", "not allowed"),
    ({"tenant_id": "ok"}, "a b", None),  # the attribute wins over the header: valid
])
def test_firehose_refuses_a_tenant_loki_would_refuse(env: Env, attributes: dict[str, str] | None, header: str | None,
                                                      why: str | None) -> None:
    import base64
    rid = f"tenant-{why}-{header}"
    headers = {"X-Amz-Firehose-Request-Id": rid, "Content-Type": "application/json"}
    if attributes is not None:
        headers["X-Amz-Firehose-Common-Attributes"] = orjson.dumps({"commonAttributes": attributes}).decode()
    if header is not None:
        headers["X-Scope-OrgID"] = header
    body = orjson.dumps({"requestId": rid, "timestamp": time.time_ns() // 1_000_000,
                         "records": [{"data": base64.b64encode(b"t").decode()}]})
    r = httpx.post(f"http://127.0.0.1:{env.firehose}/awsfirehose/api/v1/push", content=body, headers=headers, timeout=10)
    if why is None:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 400 and why in r.json()["errorMessage"], r.text
        assert r.json()["requestId"] == rid
