"""The aws_firehose job over real HTTP: the relay process, Alloy's real request bodies, the Loki stand-in."""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import payloads
from tests.conftest import RelayProcess, free_port
from tests.loki_receiver import Receiver
from tests.payloads import ACCOUNT

PATH = "/awsfirehose/api/v1/push"
ARN = f"arn:aws:firehose:eu-west-3:{ACCOUNT}:deliverystream/relay-test-stream"
STREAM = "relay-test-stream"
KEY = "s3cr3t-access-key"
# What our Firehose payloads hold (tests/payloads/make.py).
CW_GROUP = "/aws/lambda/thumbnailer"
CW_OWNER = ACCOUNT
CW_STREAM = "2025/03/14/[$LATEST]0f1e2d3c4b5a69788796a5b4c3d2e1f0"
CW_TIMESTAMPS = [1741944600000, 1741944600180, 1741944600181, 1741944600240, 1741944600242, 1741944600242]
CW_EVENTS = len(CW_TIMESTAMPS)
DIRECT_PUT_MS = 1741944700250
DIRECT_PUT_LINES = [
    '{"sensor":"room-4","celsius":21.5,"ok":true}',
    '{"sensor":"room-5","celsius":29.25,"ok":false}',
    '{"sensor":"cellar","celsius":11.0,"ok":true}',
]
# fixture -> (entries, control messages, skipped records by reason)
EXPECTED: dict[str, tuple[int, int, dict[str, int]]] = {
    "direct-put.json": (3, 0, {}),
    "direct-put-text.json": (1, 0, {}),
    "cw-mixed.json": (CW_EVENTS, 1, {}),
    "cw-control.json": (0, 1, {}),
    "cw-data.json": (CW_EVENTS, 0, {}),
    "cw-control-and-bad.json": (0, 1, {"base64-decode": 1}),
}

# ---- one relay for the module: several jobs, one port each ---------------------------------


class Env:
    def __init__(self, receiver: Receiver, relay: RelayProcess, ports: dict[str, int]) -> None:
        self.rx = receiver
        self.relay = relay
        self.ports = ports
        self.http = httpx.Client(timeout=10)

    def post(
        self,
        job: str,
        body: bytes | dict[str, Any],
        *,
        request_id: str | None = None,
        gz: bool = False,
        key: str | None = None,
        attributes: dict[str, str] | None = None,
        arn: str | None = ARN,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        h = {"Content-Type": "application/json"}
        if request_id is None:
            request_id = str(uuid.uuid4())
        if request_id:
            h["X-Amz-Firehose-Request-Id"] = request_id
        if arn:
            h["X-Amz-Firehose-Source-Arn"] = arn
        if key is not None:
            h["X-Amz-Firehose-Access-Key"] = key
        if attributes is not None:
            h["X-Amz-Firehose-Common-Attributes"] = json.dumps({"commonAttributes": attributes})
        if gz:
            body = gzip.compress(body)
            h["Content-Encoding"] = "gzip"
        h.update(headers or {})
        return self.http.post(f"http://127.0.0.1:{self.ports[job]}{PATH}", content=body, headers=h)

    def metric(self, name: str, **labels: str) -> float:
        return self.relay.metric(name, **labels)

    def sentinel(self, job: str = "plain", tenant: str | None = None) -> None:
        """Push one marker line and wait for it: everything posted before it has been delivered too."""
        marker = f"sentinel-{uuid.uuid4()}"
        headers = {"X-Scope-OrgID": tenant} if tenant else None
        r = self.post(job, direct_put([marker]), headers=headers, key=KEY if job == "keyed" else None)
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 10
        while marker not in self.rx.lines(tenant):
            assert time.monotonic() < deadline, "sentinel never arrived"
            time.sleep(0.02)

    def entries(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.rx.entries(tenant) if not e["line"].startswith("sentinel-")]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    rx = Receiver.start(no_reject_old_samples=True)
    ports = {name: free_port() for name in ("plain", "keyed", "relabeled", "incoming", "small", "split")}

    def job(name: str, **block: Any) -> dict[str, Any]:
        server = {"http_listen_address": "127.0.0.1", "http_listen_port": ports[name]}
        return {"job_name": name, "aws_firehose": {"server": server, **block}}

    keyfile = tmp_path_factory.mktemp("key") / "access_key"
    keyfile.write_text(KEY + "\n")
    config = {
        "clients": [{"url": rx.url, "batchwait": "50ms", "backoff_config": {"min_period": "50ms", "max_period": "500ms"}}],
        "scrape_configs": [
            job("plain"),
            job("keyed", access_key_file=str(keyfile)),
            {
                **job("relabeled", labels={"env": "test"}),
                "relabel_configs": [{"source_labels": ["__aws_cw_log_stream"], "target_label": "log_stream"}],
            },
            job("incoming", use_incoming_timestamp=True),
            job("small", max_send_msg_size=2048),
            job("split", split_lines=True, labels={"job": "split"}),
        ],
        "limits_config": {"reject_old_samples": False},  # the fixtures are years old; the stand-in takes them too
    }
    relay = RelayProcess(tmp_path_factory.mktemp("relay"), config, [], None)
    try:
        relay.wait_ready()
        yield Env(rx, relay, ports)
    finally:
        relay.stop()
        rx.stop()


@pytest.fixture
def fh(env: Env) -> Env:
    env.rx.reset()
    return env


# ---- helpers ---------------------------------------------------------------------------------


def fixture_body(name: str) -> bytes:
    return payloads.read(f"firehose/{name}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def direct_put(lines: list[str], request_id: str = "body-id", ts_ms: int | None = None) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "timestamp": ts_ms if ts_ms is not None else int(time.time() * 1000),
        "records": [{"data": b64(line.encode())} for line in lines],
    }


def cloudwatch_record(events: list[tuple[int, str]], group: str = "/aws/lambda/fn", stream: str = "s1",
                      msg_type: str = "DATA_MESSAGE") -> dict[str, str]:
    doc = {
        "messageType": msg_type, "owner": "111122223333", "logGroup": group, "logStream": stream,
        "subscriptionFilters": ["f1", "f2"],
        "logEvents": [{"id": str(i), "timestamp": ts, "message": msg} for i, (ts, msg) in enumerate(events)],
    }
    return {"data": b64(gzip.compress(json.dumps(doc).encode()))}


def check_answer(r: httpx.Response, status: int, request_id: str, error: bool) -> dict[str, Any]:
    """The Firehose response contract, field by field."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0].strip() == "application/json"
    doc = r.json()
    assert doc["requestId"] == request_id
    assert isinstance(doc["timestamp"], int) and not isinstance(doc["timestamp"], bool)
    assert abs(doc["timestamp"] - time.time() * 1000) < 5000
    if error:
        assert set(doc) == {"requestId", "timestamp", "errorMessage"}
        assert isinstance(doc["errorMessage"], str) and doc["errorMessage"]
    else:
        assert set(doc) == {"requestId", "timestamp"}
    return doc


# ---- the fixtures: plain and gzipped ----------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_payload(fh: Env, name: str, gz: bool) -> None:
    entries, controls, skipped = EXPECTED[name]
    control0 = fh.metric("loki_relay_firehose_control_messages_total", job="plain")
    skipped0 = {k: fh.metric("loki_relay_firehose_records_skipped_total", job="plain", reason=k) for k in skipped}
    records0 = fh.metric("loki_relay_firehose_records_total", job="plain")
    rid = str(uuid.uuid4())
    r = fh.post("plain", fixture_body(name), request_id=rid, gz=gz)
    check_answer(r, 200, rid, error=False)
    # Counted before the answer: read them before the sentinel adds its own record.
    records = len(json.loads(fixture_body(name))["records"])
    assert fh.metric("loki_relay_firehose_records_total", job="plain") - records0 == records
    assert fh.metric("loki_relay_firehose_control_messages_total", job="plain") - control0 == controls
    for reason, n in skipped.items():
        assert fh.metric("loki_relay_firehose_records_skipped_total", job="plain", reason=reason) - skipped0[reason] == n
    fh.sentinel()
    got = fh.entries()
    assert len(got) == entries
    # Never the control message's line (Alloy ingests it), never the request id as a label.
    assert not any("CWL CONTROL MESSAGE" in e["line"] for e in got)
    for e in got:
        assert all(not k.startswith("__") for k in e["labels"])
        assert rid not in e["labels"].values()
    if name.startswith("direct-put"):
        want = DIRECT_PUT_LINES if name == "direct-put.json" else ["temperature alarm cleared in room 5"]
        assert [e["line"] for e in got] == want
        assert all(e["labels"] == {"delivery_stream": STREAM, "job": "aws_firehose"} for e in got)
    elif entries:
        assert got[0]["line"].startswith("INIT_START Runtime Version: python:3.12.v31")
        assert got[-1]["line"].startswith("REPORT RequestId: c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f")
        assert all(e["labels"] == {"delivery_stream": STREAM, "log_group": CW_GROUP,
                                   "owner": CW_OWNER, "job": "aws_firehose"} for e in got)
        # Receive time (use_incoming_timestamp is off): now, in order, distinct.
        ts = [e["ts"] for e in got]
        assert ts == sorted(ts) and len(set(ts)) == len(ts)
        assert abs(ts[0] - time.time_ns()) < 30 * 10**9


def test_control_messages_produce_nothing_and_are_counted(fh: Env) -> None:
    before = fh.metric("loki_relay_firehose_control_messages_total", job="plain")
    body = {"requestId": "x", "timestamp": 1, "records": [cloudwatch_record([(1, "CWL CONTROL MESSAGE")], msg_type="CONTROL_MESSAGE")] * 3}
    rid = str(uuid.uuid4())
    check_answer(fh.post("plain", body, request_id=rid), 200, rid, error=False)
    fh.sentinel()
    assert fh.entries() == []
    assert fh.metric("loki_relay_firehose_control_messages_total", job="plain") - before == 3


def test_bad_records_are_skipped_counted_and_do_not_fail_the_batch(fh: Env) -> None:
    reasons = ("base64-decode", "gzip-deflate", "cw-json-decode", "empty")
    before = {r: fh.metric("loki_relay_firehose_records_skipped_total", job="plain", reason=r) for r in reasons}
    now = int(time.time() * 1000)
    body = {
        "requestId": "ignored",
        "timestamp": now,
        "records": [
            {"data": "not base64!"},
            {"data": b64(b"\x1f\x8b\x08 broken gzip")},
            {"data": b64(gzip.compress(b'{"just": "json"}'))},
            {"data": ""},
            {"data": b64(b"good direct put")},
            cloudwatch_record([(now, "good cw event")]),
        ],
    }
    rid = str(uuid.uuid4())
    check_answer(fh.post("plain", body, request_id=rid), 200, rid, error=False)
    fh.sentinel()
    assert sorted(e["line"] for e in fh.entries()) == ["good cw event", "good direct put"]
    for r in reasons:
        assert fh.metric("loki_relay_firehose_records_skipped_total", job="plain", reason=r) - before[r] == 1, r
    assert "skipped 4 of 6 records" in fh.relay.log()


# ---- access key ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "wrong", KEY + "x", KEY[:-1]], ids=["missing", "empty", "wrong", "longer", "shorter"])
def test_access_key_refused(fh: Env, key: str | None) -> None:
    rid = str(uuid.uuid4())
    r = fh.post("keyed", fixture_body("direct-put.json"), request_id=rid, key=key)
    doc = check_answer(r, 401, rid, error=True)
    assert "access key" in doc["errorMessage"]
    fh.sentinel("keyed")
    assert fh.entries() == []


def test_access_key_accepted(fh: Env) -> None:
    rid = str(uuid.uuid4())
    check_answer(fh.post("keyed", fixture_body("direct-put.json"), request_id=rid, key=KEY, gz=True), 200, rid, False)
    assert [e["line"] for e in fh.rx.wait_for(3)] == DIRECT_PUT_LINES


def test_refused_key_is_not_remembered(fh: Env) -> None:
    """A 401 ingests nothing, so the same request id with the right key is ingested."""
    rid = str(uuid.uuid4())
    check_answer(fh.post("keyed", fixture_body("direct-put.json"), request_id=rid, key="bad"), 401, rid, True)
    check_answer(fh.post("keyed", fixture_body("direct-put.json"), request_id=rid, key=KEY), 200, rid, False)
    assert len(fh.rx.wait_for(3)) == 3


# ---- common attributes and tenants ---------------------------------------------------------


def test_common_attributes_become_labels_and_route_the_tenant(fh: Env) -> None:
    attrs = {"lbl_team": "payments", "lbl_Cost-Center": "cc.42", "lbl_9bad": "dropped", "tenant_id": "tenant-a",
             "not_a_label": "ignored"}
    rid = str(uuid.uuid4())
    check_answer(fh.post("plain", fixture_body("direct-put.json"), request_id=rid, attributes=attrs,
                         headers={"X-Scope-OrgID": "overridden"}), 200, rid, False)
    got = fh.rx.wait_for(3, tenant="tenant-a")
    assert [e["line"] for e in got] == DIRECT_PUT_LINES
    assert all(e["tenant"] == "tenant-a" for e in got)
    assert got[0]["labels"] == {"team": "payments", "cost_center": "cc.42", "delivery_stream": STREAM,
                                "job": "aws_firehose"}
    fh.sentinel()
    assert fh.entries("overridden") == [] and fh.entries("") == []


def test_tenant_from_scope_header_without_attribute(fh: Env) -> None:
    check_answer(fh.post("plain", direct_put(["to b"]), request_id="rid-b", headers={"X-Scope-OrgID": "tenant-b"}),
                 200, "rid-b", False)
    got = fh.rx.wait_for(1, tenant="tenant-b")
    assert [(e["tenant"], e["line"]) for e in got] == [("tenant-b", "to b")]


def test_invalid_tenant_is_refused_not_dropped_later(fh: Env) -> None:
    rid = str(uuid.uuid4())
    r = fh.post("plain", direct_put(["x"]), request_id=rid, attributes={"tenant_id": "a|b"})
    assert "invalid tenant" in check_answer(r, 400, rid, True)["errorMessage"]


def test_bad_common_attributes_header_is_ignored_and_counted(fh: Env) -> None:
    before = fh.metric("loki_relay_firehose_invalid_common_attributes_total", job="plain")
    rid = str(uuid.uuid4())
    r = fh.post("plain", direct_put(["attrs"]), request_id=rid, headers={"X-Amz-Firehose-Common-Attributes": "{nope"})
    check_answer(r, 200, rid, False)
    assert [e["line"] for e in fh.rx.wait_for(1)] == ["attrs"]
    assert fh.metric("loki_relay_firehose_invalid_common_attributes_total", job="plain") - before == 1


# ---- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_retried_request_id_is_ingested_once(fh: Env, gz: bool) -> None:
    before = fh.metric("loki_relay_firehose_duplicate_requests_total", job="plain")
    rid = str(uuid.uuid4())
    body = fixture_body("cw-mixed.json")
    for _ in range(3):
        check_answer(fh.post("plain", body, request_id=rid, gz=gz), 200, rid, False)
    fh.sentinel()
    assert len(fh.entries()) == CW_EVENTS
    assert fh.metric("loki_relay_firehose_duplicate_requests_total", job="plain") - before == 2
    # A different id with the same body is a different delivery.
    check_answer(fh.post("plain", body, request_id=rid + "-2", gz=gz), 200, rid + "-2", False)
    fh.sentinel()
    assert len(fh.entries()) == 2 * CW_EVENTS


def test_request_id_from_body_when_header_missing(fh: Env) -> None:
    body = direct_put(["from body id"], request_id=f"body-{uuid.uuid4()}")
    for _ in range(2):
        check_answer(fh.post("plain", body, request_id=""), 200, body["requestId"], False)
    fh.sentinel()
    assert [e["line"] for e in fh.entries()] == ["from body id"]


def test_concurrent_retries_ingest_once(fh: Env) -> None:
    import concurrent.futures

    rid = str(uuid.uuid4())
    body = fixture_body("cw-data.json")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: httpx.post(
            f"http://127.0.0.1:{fh.ports['plain']}{PATH}", content=body,
            headers={"X-Amz-Firehose-Request-Id": rid}, timeout=10).status_code, range(16)))
    assert codes == [200] * 16
    fh.sentinel()
    assert len(fh.entries()) == CW_EVENTS


# ---- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,headers",
    [
        (b"not json", {}),
        (b"[1, 2]", {}),
        (b'{"requestId": "r"}', {}),
        (b'{"records": [{"data": 1}]}', {}),
        (b'{"records": []}', {"Content-Encoding": "gzip"}),
        (b'{"records": []}', {"Content-Encoding": "br"}),
    ],
    ids=["not-json", "not-object", "no-records", "data-not-string", "fake-gzip", "unknown-encoding"],
)
def test_malformed_body_is_400(fh: Env, body: bytes, headers: dict[str, str]) -> None:
    rid = str(uuid.uuid4())
    check_answer(fh.post("plain", body, request_id=rid, headers=headers), 400, rid, True)


def test_malformed_request_is_not_remembered(fh: Env) -> None:
    rid = str(uuid.uuid4())
    check_answer(fh.post("plain", b"garbage", request_id=rid), 400, rid, True)
    check_answer(fh.post("plain", direct_put(["fixed"]), request_id=rid), 200, rid, False)
    assert [e["line"] for e in fh.rx.wait_for(1)] == ["fixed"]


def test_over_size_is_413(fh: Env) -> None:
    rid = str(uuid.uuid4())
    big = direct_put(["x" * 4000])
    check_answer(fh.post("small", big, request_id=rid), 413, rid, True)
    # gzip'd small on the wire, too large once decompressed
    check_answer(fh.post("small", big, request_id=rid, gz=True), 413, rid, True)
    check_answer(fh.post("small", direct_put(["fits"]), request_id=rid), 200, rid, False)
    assert [e["line"] for e in fh.rx.wait_for(1)] == ["fits"]


def test_get_is_not_allowed(fh: Env) -> None:
    assert httpx.get(f"http://127.0.0.1:{fh.ports['plain']}{PATH}").status_code == 405


# ---- labels: default rules, user rules, static labels ---------------------------------------


def test_default_rules_without_arn_still_label_entries(fh: Env) -> None:
    rid = str(uuid.uuid4())
    now = int(time.time() * 1000)
    body = {"requestId": rid, "timestamp": now, "records": [
        cloudwatch_record([(now, "cw")], group="/ecs/api"), {"data": b64(b"plain")}]}
    check_answer(fh.post("plain", body, request_id=rid, arn=None), 200, rid, False)
    got = {e["line"]: e["labels"] for e in fh.rx.wait_for(2)}
    assert got == {"cw": {"log_group": "/ecs/api", "owner": "111122223333", "job": "aws_firehose"},
                   "plain": {"job": "aws_firehose"}}


def test_static_job_label_wins_over_the_default(fh: Env) -> None:
    check_answer(fh.post("split", direct_put(["one"]), request_id="r-split-1"), 200, "r-split-1", False)
    assert fh.rx.wait_for(1)[0]["labels"] == {"job": "split", "delivery_stream": STREAM}


def test_user_relabel_configs_replace_the_defaults(fh: Env) -> None:
    rid = str(uuid.uuid4())
    check_answer(fh.post("relabeled", fixture_body("cw-data.json"), request_id=rid), 200, rid, False)
    got = fh.rx.wait_for(CW_EVENTS)
    assert all(e["labels"] == {"env": "test", "log_stream": CW_STREAM} for e in got)


def test_alloy_labels_are_available_to_relabel_rules(tmp_path: Path, receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    rules = [
        {"action": "labelmap", "regex": "__aws_(.*)", "replacement": "aws_$1"},
        {"action": "labeldrop", "regex": "aws_firehose_request_id"},
    ]
    config = {
        "clients": [{"url": receiver.url, "batchwait": "50ms"}],
        "scrape_configs": [{"job_name": "fh", "relabel_configs": rules,
                            "aws_firehose": {"server": {"http_listen_address": "127.0.0.1", "http_listen_port": port}}}],
    }
    start_relay(config)
    r = httpx.post(f"http://127.0.0.1:{port}{PATH}", content=fixture_body("cw-mixed.json"),
                   headers={"X-Amz-Firehose-Request-Id": "rid-1", "X-Amz-Firehose-Source-Arn": ARN})
    check_answer(r, 200, "rid-1", False)
    got = receiver.wait_for(CW_EVENTS)
    assert got[0]["labels"] == {
        "aws_firehose_source_arn": ARN,
        "aws_owner": CW_OWNER,
        "aws_cw_log_group": CW_GROUP,
        "aws_cw_log_stream": CW_STREAM,
        "aws_cw_matched_filters": "thumbs-to-firehose",
        "aws_cw_msg_type": "DATA_MESSAGE",
    }


# ---- timestamps and split_lines --------------------------------------------------------------


def test_use_incoming_timestamp(fh: Env) -> None:
    rid = str(uuid.uuid4())
    check_answer(fh.post("incoming", fixture_body("cw-data.json"), request_id=rid, gz=True),
                 200, rid, False)
    got = fh.rx.wait_for(CW_EVENTS)
    assert [e["ts"] for e in got] == [ms * 1_000_000 for ms in CW_TIMESTAMPS]
    fh.rx.reset()
    # Direct PUT: the request's timestamp, successive records 1 ns apart (Loki merges equal lines of equal times).
    rid = str(uuid.uuid4())
    check_answer(fh.post("incoming", fixture_body("direct-put.json"), request_id=rid), 200, rid, False)
    got = fh.rx.wait_for(3)
    assert sorted(e["ts"] for e in got) == [DIRECT_PUT_MS * 1_000_000 + i for i in range(3)]


def test_split_lines(fh: Env) -> None:
    rid = str(uuid.uuid4())
    check_answer(fh.post("split", direct_put(["a\nb\r\n\nc\n"]), request_id=rid), 200, rid, False)
    assert [e["line"] for e in fh.rx.wait_for(3)] == ["a", "b", "c"]
    fh.rx.reset()
    # Without split_lines a multi-line record stays one entry.
    check_answer(fh.post("plain", direct_put(["a\nb"]), request_id=rid), 200, rid, False)
    assert [e["line"] for e in fh.rx.wait_for(1)] == ["a\nb"]


# ---- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "block,message",
    [
        ({"access_key": "a", "access_key_file": "/nonexistent"}, "mutually exclusive"),
        ({"access_key_file": "/nonexistent/key"}, "cannot read"),
        ({"split_lines": "yes"}, "split_lines"),
        ({"nope": 1}, "unknown configuration key"),
    ],
)
def test_config_errors(block: dict[str, Any], message: str) -> None:
    from relay.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=message):
        parse_config({"scrape_configs": [{"job_name": "f", "aws_firehose": block}]})


# ---- in process: backpressure and the request-id memory -------------------------------------


class FakeIngest:
    """Stands in for relay.ingest.Ingest: refuses with Backpressure while `refuse` is set."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.full_reason = ""
        self.full_tenants: list[str] = []
        self.refuse = False
        self.pushed: list[tuple[list[Any], str]] = []
        self.errors: list[str] = []

    async def check(self, tenant: str, size: int = 0) -> Any:
        from relay.ingest import Backpressure
        from relay.sink.fanout import Ticket

        self.full_tenants.append(tenant)
        if self.full_reason:
            raise Backpressure(f"too much buffered, retry later ({self.full_reason})")
        return Ticket(None, tenant, 0)  # type: ignore[arg-type]

    async def push(self, streams: list[Any], tenant: str, receive_ns: int, ticket: Any = None,
                   times: tuple[int, int] | None = None) -> Any:
        from relay.ingest import Backpressure
        from relay.pipeline import Outcome

        if self.refuse:
            raise Backpressure("queue full", retry_after=2.0)
        self.pushed.append((streams, tenant))
        return Outcome(entries=sum(len(s.entries.entries) for s in streams), errors=list(self.errors))


class AsgiClient:
    """Synchronous posts to an ASGI app in this process, on one event loop."""

    def __init__(self, app: Any) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://relay")

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.post(path, **kw))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@pytest.fixture
def app() -> Iterator[tuple[Any, FakeIngest]]:
    from relay.config import JobConfig, ServerConfig
    from relay.sources.http import firehose
    from relay.sources.http.listener import make_app

    ingest = FakeIngest(JobConfig(name="inproc", kind="aws_firehose", listen=ServerConfig()))
    client = AsgiClient(make_app(firehose.routes(ingest)))  # type: ignore[arg-type]
    try:
        yield client, ingest
    finally:
        client.close()


def test_backpressure_is_503_and_the_retry_is_ingested(app: tuple[Any, FakeIngest]) -> None:
    client, ingest = app
    body = fixture_body("direct-put.json")
    headers = {"X-Amz-Firehose-Request-Id": "bp-1"}
    ingest.refuse = True
    r = client.post(PATH, content=body, headers=headers)
    doc = check_answer(r, 503, "bp-1", True)
    assert "queue full" in doc["errorMessage"] and r.headers["retry-after"] == "2"
    assert ingest.pushed == []
    ingest.refuse = False
    check_answer(client.post(PATH, content=body, headers=headers), 200, "bp-1", False)
    check_answer(client.post(PATH, content=body, headers=headers), 200, "bp-1", False)
    assert len(ingest.pushed) == 1 and len(ingest.pushed[0][0][0].entries.entries) == 3


def test_full_buffers_refuse_before_decoding(app: tuple[Any, FakeIngest]) -> None:
    client, ingest = app
    ingest.full_reason = "max_buffered_bytes_per_tenant"
    attrs = json.dumps({"commonAttributes": {"tenant_id": "team-a"}})
    headers = {"X-Amz-Firehose-Request-Id": "full-1", "X-Amz-Firehose-Common-Attributes": attrs}
    r = client.post(PATH, content=b"not even json", headers=headers)
    assert "max_buffered_bytes_per_tenant" in check_answer(r, 503, "full-1", True)["errorMessage"]
    assert ingest.full_tenants == ["team-a"] and ingest.pushed == []
    ingest.full_reason = ""
    r = client.post(PATH, content=fixture_body("direct-put.json"), headers={**headers, "X-Scope-OrgID": "ignored"})
    check_answer(r, 200, "full-1", False)
    assert ingest.full_tenants[-1] == "team-a" and ingest.pushed[0][1] == "team-a"
    client.post(PATH, content=fixture_body("direct-put.json"), headers={"X-Scope-OrgID": "t2"})
    assert ingest.full_tenants[-1] == "t2"


def test_partly_refused_streams_are_400_and_a_retry_is_not_ingested_again(app: tuple[Any, FakeIngest]) -> None:
    client, ingest = app
    ingest.errors = ["stream has 16 label names, more than the limit of 15"]
    headers = {"X-Amz-Firehose-Request-Id": "partial-1"}
    for _ in range(2):
        doc = check_answer(client.post(PATH, content=fixture_body("direct-put.json"), headers=headers), 400, "partial-1", True)
        assert "label names" in doc["errorMessage"]
    assert len(ingest.pushed) == 1


def test_only_control_messages_are_not_pushed(app: tuple[Any, FakeIngest]) -> None:
    client, ingest = app
    r = client.post(PATH, content=fixture_body("cw-control.json"))
    check_answer(r, 200, "2a3b4c5d-6e7f-4809-9a1b-2c3d4e5f6a7b", False)  # no header: the body's id (cw-control.json)
    assert ingest.pushed == []


def test_recent_requests_is_bounded_lru() -> None:
    import asyncio

    from relay.sources.http.firehose import RecentRequests

    async def run() -> None:
        recent = RecentRequests(size=3)
        for rid in "abcd":
            assert await recent.claim(rid) is None
            recent.release(rid, (200, None))
        assert await recent.claim("a") is None  # evicted (oldest)
        recent.release("a", None)  # forgotten: not remembered
        assert await recent.claim("a") is None
        recent.release("a", None)
        assert await recent.claim("b") == (200, None)
        # A claim in flight makes a concurrent claim wait for its outcome.
        assert await recent.claim("x") is None
        waiter = asyncio.ensure_future(recent.claim("x"))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        recent.release("x", (400, "bad labels"))
        assert await waiter == (400, "bad labels")
        # ... and if the first one failed (503), the waiter gets the claim.
        assert await recent.claim("y") is None
        waiter = asyncio.ensure_future(recent.claim("y"))
        await asyncio.sleep(0.01)
        recent.release("y", None)
        assert await waiter is None

    asyncio.run(run())


def test_request_id_is_left_out_of_the_cache_key_only_when_no_rule_sees_it(app: tuple[Any, FakeIngest]) -> None:
    from relay.aws.firehose import DEFAULT_RULES, REQUEST_ID_LABEL
    from relay.relabel import compile_rules
    from relay.sources.http.firehose import sees

    assert not any(sees(r, REQUEST_ID_LABEL) for r in DEFAULT_RULES)
    for rule in ([{"action": "labelmap", "regex": "__aws_(.*)"}], [{"source_labels": [REQUEST_ID_LABEL], "target_label": "x"}],
                 [{"action": "labeldrop", "regex": "x"}]):
        assert sees(compile_rules(rule)[0], REQUEST_ID_LABEL)
    client, ingest = app
    for rid in ("k-1", "k-2"):
        check_answer(client.post(PATH, content=fixture_body("direct-put.json"),
                                 headers={"X-Amz-Firehose-Request-Id": rid}), 200, rid, False)
    (s1,), (s2,) = ingest.pushed[0][0], ingest.pushed[1][0]
    assert s1.labels[REQUEST_ID_LABEL] == "k-1" and s2.labels[REQUEST_ID_LABEL] == "k-2"
    assert s1.key == s2.key and REQUEST_ID_LABEL not in dict(s1.key)
