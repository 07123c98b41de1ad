"""Issue 2, item 4: the push listeners, over real HTTP, with bodies built independently of relay's code."""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import snappy

from tests.conftest import RelayProcess, free_port, push_config
from tests.loki_receiver import Receiver, encode_push

JSON = "application/json"
PROTO = "application/x-protobuf"


def post(port: int, body: bytes, ctype: str | None, *, path: str = "/loki/api/v1/push",
         headers: dict[str, str] | None = None) -> httpx.Response:
    h = dict(headers or {})
    if ctype is not None:
        h["Content-Type"] = ctype
    return httpx.post(f"http://127.0.0.1:{port}{path}", content=body, headers=h, timeout=10)


def jbody(*streams: tuple[dict[str, str], list[Any]]) -> bytes:
    return orjson.dumps({"streams": [{"stream": lab, "values": vals} for lab, vals in streams]})


def now() -> int:
    return time.time_ns()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Receiver, RelayProcess, int]]:
    """One stand-in and one relay for the tests that need no special config (starting them is the slow part)."""
    rx = Receiver.start()
    port = free_port()
    rel = RelayProcess(tmp_path_factory.mktemp("relay"), push_config(rx.url, port), [], None)
    try:
        yield rx, rel.wait_ready(), port
    finally:
        rel.stop()
        rx.stop()


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    """The shared stand-in, emptied, for tests on the shared relay; a fresh one for the others."""
    if "relay_port" in request.fixturenames:
        rx, rel, _ = request.getfixturevalue("shared")
        end = time.monotonic() + 5
        while rel.metric("loki_relay_buffered_entries") and time.monotonic() < end:
            time.sleep(0.05)  # whatever an earlier test left in flight lands before the reset
        time.sleep(0.05)
        rx.reset()
        yield rx
        return
    rx = Receiver.start()
    try:
        yield rx
    finally:
        rx.stop()


@pytest.fixture
def relay_port(shared: tuple[Receiver, RelayProcess, int], receiver: Receiver) -> int:
    return shared[2]


# ---- body formats ----------------------------------------------------------------------------


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"])
def test_json_with_parameters(relay_port: int, receiver: Receiver, ctype: str) -> None:
    r = post(relay_port, jbody(({"app": "j", "level": "info"}, [[str(now()), "json line"]])), ctype)
    assert r.status_code == 204 and r.content == b""
    (e,) = receiver.wait_for(1)
    assert (e["labels"], e["line"], e["tenant"]) == ({"app": "j", "level": "info"}, "json line", "")


@pytest.mark.parametrize("ctype", [PROTO, "application/octet-stream", "text/plain"])
def test_protobuf_snappy_for_any_other_content_type(relay_port: int, receiver: Receiver, ctype: str) -> None:
    t = now()
    body = encode_push([('{app="p", level="warn"}', [(t, "proto one"), (t + 1, "proto two")]),
                        ('{app="q"}', [(t, "q line")])])
    r = post(relay_port, body, ctype)
    assert r.status_code == 204, r.text
    got = sorted((e["line"], tuple(sorted(e["labels"].items()))) for e in receiver.wait_for(3))
    assert got == [("proto one", (("app", "p"), ("level", "warn"))), ("proto two", (("app", "p"), ("level", "warn"))),
                   ("q line", (("app", "q"),))]


@pytest.mark.parametrize("headers", [{}, {"Content-Type": ""}])
def test_missing_content_type_is_400(relay_port: int, receiver: Receiver, headers: dict[str, str]) -> None:
    body = encode_push([('{app="p"}', [(now(), "x")])])
    r = httpx.post(f"http://127.0.0.1:{relay_port}/loki/api/v1/push", content=body, headers=headers, timeout=10)
    assert r.status_code == 400
    assert "content-type" in r.text.lower()
    time.sleep(0.3)
    assert receiver.requests() == []


@pytest.mark.parametrize("encoding,encode", [
    ("gzip", gzip.compress),
    ("deflate", lambda b: zlib.compress(b)),  # RFC 9110: zlib-wrapped
    ("deflate", lambda b: (lambda c: c.compress(b) + c.flush())(zlib.compressobj(wbits=-15))),  # Go: raw deflate
    ("identity", lambda b: b),
])
def test_content_encoding_json(relay_port: int, receiver: Receiver, encoding: str, encode: Any) -> None:
    body = encode(jbody(({"app": "enc"}, [[str(now()), f"encoded {encoding}"]])))
    r = post(relay_port, body, JSON, headers={"Content-Encoding": encoding})
    assert r.status_code == 204, r.text
    assert [e["line"] for e in receiver.wait_for(1)] == [f"encoded {encoding}"]


@pytest.mark.parametrize("encoding", ["snappy", "gzip", ""])
def test_content_encoding_protobuf(relay_port: int, receiver: Receiver, encoding: str) -> None:
    body = encode_push([('{app="enc"}', [(now(), "pb " + encoding)])])
    if encoding == "gzip":
        body = gzip.compress(body)
    r = post(relay_port, body, PROTO, headers={"Content-Encoding": encoding} if encoding else {})
    assert r.status_code == 204, r.text
    assert [e["line"] for e in receiver.wait_for(1)] == ["pb " + encoding]


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress"])
def test_unsupported_content_encoding_is_400(relay_port: int, receiver: Receiver, encoding: str) -> None:
    r = post(relay_port, jbody(({"app": "x"}, [[str(now()), "x"]])), JSON, headers={"Content-Encoding": encoding})
    assert r.status_code == 400
    assert encoding in r.text
    time.sleep(0.3)
    assert receiver.requests() == []


@pytest.mark.parametrize("body,ctype,needle", [
    (b"{not json", JSON, "invalid JSON"),
    (b'{"streams": 3}', JSON, "streams"),
    (b"\x00\x01garbage", PROTO, "snappy"),
    (snappy.compress(b"\xff\xff\xff\xff"), PROTO, "protobuf"),
])
def test_malformed_bodies_are_400_with_a_reason(relay_port: int, body: bytes, ctype: str, needle: str) -> None:
    r = post(relay_port, body, ctype)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/plain")
    assert needle in r.text


# ---- size limits -----------------------------------------------------------------------------


@pytest.fixture
def small_relay(receiver: Receiver, start_relay: Any) -> int:
    port = free_port()
    start_relay(push_config(receiver.url, port, max_send_msg_size=20_000))
    return port


def test_413_over_max_send_msg_size_before_decompression(small_relay: int, receiver: Receiver) -> None:
    big = jbody(({"app": "big"}, [[str(now()), "x" * 30_000]]))
    assert post(small_relay, big, JSON).status_code == 413
    # Chunked (no Content-Length): counted while reading.
    r = httpx.post(f"http://127.0.0.1:{small_relay}/loki/api/v1/push", content=iter([big[:15_000], big[15_000:]]),
                   headers={"Content-Type": JSON}, timeout=10)
    assert r.status_code == 413
    # Just under the limit is fine.
    ok = jbody(({"app": "big"}, [[str(now()), "y" * 19_000]]))
    assert len(ok) < 20_000
    assert post(small_relay, ok, JSON).status_code == 204
    assert [len(e["line"]) for e in receiver.wait_for(1)] == [19_000]


def test_413_after_decompression_gzip_bomb(small_relay: int, receiver: Receiver) -> None:
    bomb = gzip.compress(jbody(({"app": "bomb"}, [[str(now()), "z" * 10_000_000]])))
    assert len(bomb) < 20_000
    r = post(small_relay, bomb, JSON, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413
    deflate_bomb = zlib.compress(b" " * 5_000_000)
    assert post(small_relay, deflate_bomb, JSON, headers={"Content-Encoding": "deflate"}).status_code == 413
    time.sleep(0.3)
    assert receiver.requests() == []


def test_413_after_snappy_decompression(small_relay: int, receiver: Receiver) -> None:
    body = encode_push([('{app="bomb"}', [(now(), "a" * 200_000)])])
    assert len(body) < 20_000
    assert post(small_relay, body, PROTO).status_code == 413
    time.sleep(0.3)
    assert receiver.requests() == []


# ---- structured metadata, partial failure, tenants ----------------------------------------------


def test_structured_metadata_json_and_protobuf(relay_port: int, receiver: Receiver) -> None:
    t = now()
    r = post(relay_port, jbody(({"app": "sm"}, [[str(t), "with md", {"trace_id": "abc", "user": "u1"}],
                                                [str(t + 1), "without md"]])), JSON)
    assert r.status_code == 204, r.text
    r = post(relay_port, encode_push([('{app="sm"}', [(t, "pb md", {"trace_id": "def"})])]), PROTO)
    assert r.status_code == 204, r.text
    got = {e["line"]: e["metadata"] for e in receiver.wait_for(3)}
    assert got == {"with md": {"trace_id": "abc", "user": "u1"}, "without md": {}, "pb md": {"trace_id": "def"}}


def test_one_invalid_json_stream_does_not_cost_the_others(relay_port: int, receiver: Receiver) -> None:
    t = str(now())
    body = jbody(({"app": "good1"}, [[t, "g1"]]),
                 ({"bad-name": "x"}, [[t, "bad label name"]]),
                 ({"app": "badts"}, [["yesterday", "bad timestamp"]]),
                 ({"app": "good2"}, [[t, "g2"]]))
    r = post(relay_port, body, JSON)
    assert r.status_code == 400
    assert "bad-name" in r.text and "yesterday" in r.text
    time.sleep(0.4)
    assert sorted(e["line"] for e in receiver.wait_for(2)) == ["g1", "g2"]


def test_one_invalid_protobuf_stream_does_not_cost_the_others(relay_port: int, receiver: Receiver) -> None:
    t = now()
    body = encode_push([('{app="ok1"}', [(t, "ok1")]), ('{app="unterminated}', [(t, "broken")]),
                        ('{app="ok2"}', [(t, "ok2")])])
    r = post(relay_port, body, PROTO)
    assert r.status_code == 400
    assert "unterminated" in r.text
    time.sleep(0.4)
    assert sorted(e["line"] for e in receiver.wait_for(2)) == ["ok1", "ok2"]


def test_x_scope_orgid_routes_to_that_tenant(relay_port: int, receiver: Receiver) -> None:
    t = str(now())
    assert post(relay_port, jbody(({"app": "a"}, [[t, "for a"]])), JSON, headers={"X-Scope-OrgID": "team-a"}).status_code == 204
    assert post(relay_port, jbody(({"app": "b"}, [[t, "for b"]])), JSON, headers={"X-Scope-OrgID": "team-b"}).status_code == 204
    assert post(relay_port, jbody(({"app": "n"}, [[t, "no tenant"]])), JSON).status_code == 204
    assert [e["line"] for e in receiver.wait_for(1, tenant="team-a")] == ["for a"]
    assert [e["line"] for e in receiver.wait_for(1, tenant="team-b")] == ["for b"]
    assert [e["line"] for e in receiver.wait_for(1, tenant="")] == ["no tenant"]
    by_tenant = {}
    for req in receiver.requests():
        by_tenant.setdefault(req["headers"]["x-scope-orgid"], 0)
        by_tenant[req["headers"]["x-scope-orgid"]] += req["accepted"]
    assert by_tenant == {"team-a": 1, "team-b": 1, None: 1}


# ---- other routes ----------------------------------------------------------------------------


def test_api_prom_push_protobuf_and_legacy_json(relay_port: int, receiver: Receiver) -> None:
    t = now()
    r = post(relay_port, encode_push([('{app="legacy"}', [(t, "prom pb")])]), PROTO, path="/api/prom/push")
    assert r.status_code == 204, r.text
    legacy = orjson.dumps({"streams": [{"labels": '{app="legacy", kind="json"}',
                                        "entries": [{"ts": "2024-01-02T03:04:05.123456789Z", "line": "prom json"}]}]})
    r = post(relay_port, legacy, JSON, path="/api/prom/push")
    assert r.status_code == 204, r.text
    got = sorted((e["line"], tuple(sorted(e["labels"].items()))) for e in receiver.wait_for(2))
    assert got == [("prom json", (("app", "legacy"), ("kind", "json"))), ("prom pb", (("app", "legacy"),))]


def test_raw_endpoint(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    start_relay(push_config(receiver.url, port, labels={"job": "raw", "source": "curl"}))
    before = now()
    r = httpx.post(f"http://127.0.0.1:{port}/promtail/api/v1/raw", content=b"line one\nline two\r\nline three\n",
                   timeout=10)
    after = now()
    assert r.status_code == 204, r.text
    entries = receiver.wait_for(3)
    assert [e["line"] for e in entries] == ["line one", "line two", "line three"]
    assert all(e["labels"] == {"job": "raw", "source": "curl"} for e in entries)
    ts = [e["ts"] for e in entries]
    assert all(before <= x <= after for x in ts) and ts == sorted(ts) and len(set(ts)) == 3
    # gzip works there too.
    r = httpx.post(f"http://127.0.0.1:{port}/promtail/api/v1/raw", content=gzip.compress(b"zipped\n"),
                   headers={"Content-Encoding": "gzip"}, timeout=10)
    assert r.status_code == 204
    assert receiver.wait_for(4)[-1]["line"] == "zipped"


def test_raw_without_labels_is_dropped_not_sent(relay_port: int, receiver: Receiver) -> None:
    r = httpx.post(f"http://127.0.0.1:{relay_port}/promtail/api/v1/raw", content=b"orphan\n", timeout=10)
    assert r.status_code == 204
    time.sleep(0.4)
    assert receiver.requests() == []


def test_ready_on_the_push_port(relay_port: int) -> None:
    r = httpx.get(f"http://127.0.0.1:{relay_port}/ready", timeout=5)
    assert r.status_code == 200 and r.text.strip() == "ready"


def test_get_on_push_route_is_not_allowed(relay_port: int) -> None:
    assert httpx.get(f"http://127.0.0.1:{relay_port}/loki/api/v1/push", timeout=5).status_code == 405


# ---- timestamps ------------------------------------------------------------------------------


def test_use_incoming_timestamp_true_keeps_the_senders_time(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    start_relay(push_config(receiver.url, port, use_incoming_timestamp=True))
    t = (time.time_ns() // 1_000_000_000 - 60) * 1_000_000_000 + 123_456_789
    assert post(port, jbody(({"app": "ts"}, [[str(t), "json ts"]])), JSON).status_code == 204
    assert post(port, encode_push([('{app="ts"}', [(t + 1, "pb ts")])]), PROTO).status_code == 204
    got = {e["line"]: e["ts"] for e in receiver.wait_for(2)}
    assert got == {"json ts": t, "pb ts": t + 1}


def test_use_incoming_timestamp_false_uses_receive_time_and_keeps_equal_lines(relay_port: int, receiver: Receiver) -> None:
    old = 1_500_000_000_000_000_000  # 2017: Loki would reject it; the relay replaces it
    before = now()
    r = post(relay_port, jbody(({"app": "same"}, [[str(old), "dup"], [str(old), "dup"], [str(old), "dup"]])), JSON)
    after = now()
    assert r.status_code == 204, r.text
    entries = receiver.wait_for(3)
    ts = [e["ts"] for e in entries]
    assert [e["line"] for e in entries] == ["dup", "dup", "dup"]
    assert len(set(ts)) == 3 and ts == sorted(ts)
    assert all(before <= x <= after + 3 for x in ts)


# ---- several jobs, several ports, one process ------------------------------------------------


def test_several_push_jobs_in_one_process(receiver: Receiver, start_relay: Any) -> None:
    p1, p2 = free_port(), free_port()
    cfg = push_config(receiver.url, p1, labels={"via": "one"})
    cfg["scrape_configs"].append({"job_name": "second", "loki_push_api": {
        "server": {"http_listen_address": "127.0.0.1", "http_listen_port": p2}, "labels": {"via": "two"}}})
    rel = start_relay(cfg)
    assert post(p1, jbody(({"app": "x"}, [[str(now()), "to one"]])), JSON).status_code == 204
    assert post(p2, jbody(({"app": "x"}, [[str(now()), "to two"]])), JSON).status_code == 204
    got = sorted((e["line"], e["labels"]["via"]) for e in receiver.wait_for(2))
    assert got == [("to one", "one"), ("to two", "two")]
    assert rel.metric("loki_relay_received_entries_total", job="push") == 1
    assert rel.metric("loki_relay_received_entries_total", job="second") == 1
