"""Issue 2, items 7 and 8: the clients (batching, auth, retries, isolation, TLS) and the metrics."""

from __future__ import annotations

import base64
import http.server
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import snappy

from tests.conftest import free_port
from tests.inproc import InProcessRelay, Loki
from tests.loki_receiver import Receiver, _proto

LOKI = "http://loki.invalid/loki/api/v1/push"  # in-process tests: the client sends to tests.inproc.Loki


def jpush(port: int, labels: dict[str, str], lines: list[str], *, tenant: str | None = None) -> httpx.Response:
    now = time.time_ns()
    doc = {"streams": [{"stream": labels, "values": [[str(now + i), ln] for i, ln in enumerate(lines)]}]}
    headers = {"Content-Type": "application/json"}
    if tenant is not None:
        headers["X-Scope-OrgID"] = tenant
    return httpx.post(f"http://127.0.0.1:{port}/loki/api/v1/push", content=orjson.dumps(doc), headers=headers, timeout=10)


def client(url: str, **kw: Any) -> dict[str, Any]:
    return {"url": url, "batchwait": "100ms", "backoff_config": {"min_period": "50ms", "max_period": "200ms"}, **kw}


def config(port: int, *clients: dict[str, Any], **job: Any) -> dict[str, Any]:
    return {
        "clients": list(clients),
        "scrape_configs": [{"job_name": "push", "loki_push_api": {
            "server": {"http_listen_address": "127.0.0.1", "http_listen_port": port}, **job}}],
    }


def ipush(relay: InProcessRelay, labels: dict[str, str], lines: list[str], *, tenant: str | None = None
          ) -> httpx.Response:
    now = time.time_ns()
    doc = {"streams": [{"stream": labels, "values": [[str(now + i), ln] for i, ln in enumerate(lines)]}]}
    headers = {"Content-Type": "application/json", **({"X-Scope-OrgID": tenant} if tenant is not None else {})}
    return relay.post("push", "/loki/api/v1/push", orjson.dumps(doc), headers)


@pytest.fixture
def loki() -> Loki:
    return Loki()


@pytest.fixture
def inproc(loki: Loki) -> Iterator[Any]:
    """inproc(**client) -> the relay in-process with one push job and one client sending to `loki`."""
    made: list[InProcessRelay] = []

    def make(**kw: Any) -> InProcessRelay:
        made.append(InProcessRelay(config(0, client(LOKI, **kw)), loki))
        return made[-1]

    yield make
    for relay in made:
        relay.close()


def eventually(check: Any, timeout: float = 5.0) -> None:
    """Poll until check() is true."""
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


# ---- a recording Loki (all headers, optional TLS) ---------------------------------------------


class Recorder:
    """A minimal Loki push endpoint that keeps every request's headers and decoded streams."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                req = _proto()["PushRequest"]()
                req.ParseFromString(snappy.uncompress(body))
                rec.requests.append({
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "streams": [(s.labels, [e.line for e in s.entries]) for s in req.streams],
                    "peer_cert": self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None,
                })
                self.send_response(204)
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/loki/api/v1/push"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def lines(self) -> list[str]:
        return [ln for r in self.requests for _, lines in r["streams"] for ln in lines]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.close()


# ---- batching ----------------------------------------------------------------------------------


def test_batchwait_collects_pushes_into_one_request(loki: Loki, inproc: Any) -> None:
    receiver = loki
    rel = inproc(batchwait="1s")
    doc = {"streams": [{"stream": {"app": "bw"}, "values": [[str(time.time_ns()), "l"]]}]}
    t0 = time.time()
    for i in range(5):
        doc["streams"][0]["values"][0][1] = f"l{i}"
        assert rel.post("push", "/loki/api/v1/push", orjson.dumps(doc),
                        {"Content-Type": "application/json"}).status_code == 204
    assert time.time() - t0 < 0.8  # else the test itself is too slow to say anything
    entries = receiver.wait_for(5, timeout=5)
    assert [e["line"] for e in entries] == [f"l{i}" for i in range(5)]
    (req,) = receiver.requests()
    assert req["accepted"] == 5
    assert req["time"] - t0 >= 0.9  # waited for batchwait
    # A later push starts a new batch.
    assert ipush(rel, {"app": "bw"}, ["late"]).status_code == 204
    receiver.wait_for(6, timeout=5)
    assert len(receiver.requests()) == 2


def test_batchsize_flushes_before_batchwait(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    rel = start_relay(config(port, client(receiver.url, batchwait="20s", batchsize=1000)))
    now = time.time_ns()
    # 10 streams of one ~300-byte entry: three fit in 1000 bytes.
    doc = {"streams": [{"stream": {"n": str(i)}, "values": [[str(now), f"{i}" + "x" * 299]]} for i in range(10)]}
    r = httpx.post(f"http://127.0.0.1:{port}/loki/api/v1/push", content=orjson.dumps(doc),
                   headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 204
    receiver.wait_for(9, timeout=5)
    time.sleep(0.3)
    assert [req["accepted"] for req in receiver.requests()] == [3, 3, 3]  # the last one waits for batchwait
    assert rel.metric("loki_relay_buffered_entries") == 1
    assert rel.stop() == 0  # shutdown flushes it
    assert [req["accepted"] for req in receiver.requests()] == [3, 3, 3, 1]
    assert sorted(e["labels"]["n"] for e in receiver.entries()) == [str(i) for i in range(10)]


# ---- auth, headers, tenant, external labels ---------------------------------------------------


def test_basic_auth_password(recorder: Recorder, start_relay: Any) -> None:
    port = free_port()
    start_relay(config(port, client(recorder.url, basic_auth={"username": "alice", "password": "s3cret"})))
    assert jpush(port, {"app": "a"}, ["x"]).status_code == 204
    eventually(lambda: len(recorder.requests) == 1)
    auth = recorder.requests[0]["headers"]["authorization"]
    assert auth == "Basic " + base64.b64encode(b"alice:s3cret").decode()


def test_basic_auth_password_file(recorder: Recorder, start_relay: Any, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    port = free_port()
    start_relay(config(port, client(recorder.url, basic_auth={"username": "bob", "password_file": str(tmp_path / "pw")})))
    assert jpush(port, {"app": "a"}, ["x"]).status_code == 204
    eventually(lambda: len(recorder.requests) == 1)
    assert recorder.requests[0]["headers"]["authorization"] == "Basic " + base64.b64encode(b"bob:from-file").decode()


def test_bearer_token_and_file_and_custom_headers(recorder: Recorder, start_relay: Any, tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("file-token\n")
    port = free_port()
    start_relay(config(
        port,
        client(recorder.url, name="a", tenant_id="ta", bearer_token="inline-token", headers={"X-Custom-One": "1"}),
        client(recorder.url, name="b", tenant_id="tb", bearer_token_file=str(tmp_path / "tok"),
               headers={"X-Custom-Two": "two", "User-Agent": "my-agent"}),
    ))
    assert jpush(port, {"app": "a"}, ["x"]).status_code == 204
    eventually(lambda: len(recorder.requests) == 2)
    by_tenant = {r["headers"]["x-scope-orgid"]: r["headers"] for r in recorder.requests}
    assert by_tenant["ta"]["authorization"] == "Bearer inline-token"
    assert by_tenant["ta"]["x-custom-one"] == "1"
    assert by_tenant["ta"]["content-type"] == "application/x-protobuf"
    assert by_tenant["ta"]["user-agent"].startswith("loki-relay/")
    assert by_tenant["tb"]["authorization"] == "Bearer file-token"
    assert by_tenant["tb"]["x-custom-two"] == "two"
    assert by_tenant["tb"]["user-agent"] == "my-agent"
    assert "x-custom-one" not in by_tenant["tb"]


def test_tenant_id_and_external_labels(loki: Loki, inproc: Any) -> None:
    receiver = loki
    rel = inproc(tenant_id="acme", external_labels={"cluster": "c1", "app": "ext"})
    assert ipush(rel, {"app": "own"}, ["with own app"]).status_code == 204
    assert ipush(rel, {"job": "j"}, ["without app"]).status_code == 204
    got = {e["line"]: (e["tenant"], e["labels"]) for e in receiver.wait_for(2, tenant="acme")}
    assert got == {
        "with own app": ("acme", {"app": "own", "cluster": "c1"}),
        "without app": ("acme", {"app": "ext", "cluster": "c1", "job": "j"}),
    }
    assert {r["tenant"] for r in receiver.requests()} == {"acme"}  # the X-Scope-OrgID sent
    # A push's X-Scope-OrgID beats the client's tenant_id.
    assert ipush(rel, {"app": "own"}, ["other tenant"], tenant="other").status_code == 204
    assert [e["line"] for e in receiver.wait_for(1, tenant="other")] == ["other tenant"]


# ---- retries and drops -----------------------------------------------------------------------


def test_retries_on_429_and_500_then_success(loki: Loki, inproc: Any) -> None:
    receiver = loki
    rel = inproc(name="main")
    receiver.fail(429, 1)
    receiver.fail(500, 1)
    receiver.fail(503, 1, retry_after=0)
    assert ipush(rel, {"app": "r"}, ["a", "b", "c"]).status_code == 204
    entries = receiver.wait_for(3, timeout=10)
    assert [e["line"] for e in entries] == ["a", "b", "c"]
    assert [r["status"] for r in receiver.requests()] == [429, 500, 503, 204]
    assert rel.metric("loki_relay_batch_retries_total", client="main") == 3
    assert rel.metric("loki_relay_send_errors_total", client="main", status="429") == 1
    assert rel.metric("loki_relay_send_errors_total", client="main", status="500") == 1
    assert rel.metric("loki_relay_sent_entries_total", client="main") == 3
    assert rel.metric("loki_relay_dropped_entries_total") == 0


def test_retries_on_connection_error(start_relay: Any) -> None:
    port, loki_port = free_port(), free_port()
    rel = start_relay(config(port, client(f"http://127.0.0.1:{loki_port}/loki/api/v1/push", name="main",
                                          backoff_config={"min_period": "100ms", "max_period": "200ms",
                                                          "max_retries": 50})))
    assert jpush(port, {"app": "late"}, ["waits for loki"]).status_code == 204
    eventually(lambda: rel.metric("loki_relay_batch_retries_total", client="main") >= 2)
    with Receiver.start(port=loki_port) as rx:
        assert [e["line"] for e in rx.wait_for(1, timeout=5)] == ["waits for loki"]
    assert rel.metric("loki_relay_send_errors_total", client="main", status="error") >= 2


def test_400_drops_the_batch_and_later_batches_go_through(loki: Loki, inproc: Any) -> None:
    receiver = loki
    rel = inproc(name="main")
    receiver.fail(400, 1)
    assert ipush(rel, {"app": "x"}, ["refused 1", "refused 2"]).status_code == 204
    eventually(lambda: rel.metric("loki_relay_dropped_entries_total", reason="ingester_error", client="main") == 2)
    assert ipush(rel, {"app": "x"}, ["later"]).status_code == 204
    assert [e["line"] for e in receiver.wait_for(1)] == ["later"]
    assert [r["status"] for r in receiver.requests()] == [400, 204]
    assert rel.metric("loki_relay_batch_retries_total", client="main") == 0
    assert rel.metric("loki_relay_dropped_bytes_total", reason="ingester_error", client="main") > 0


def test_max_retries_exhausted_drops(loki: Loki, inproc: Any) -> None:
    receiver = loki
    rel = inproc(name="main", backoff_config={"min_period": "20ms", "max_period": "50ms", "max_retries": 2})
    receiver.fail(500, 3)
    assert ipush(rel, {"app": "x"}, ["gone"]).status_code == 204
    eventually(lambda: rel.metric("loki_relay_dropped_entries_total", reason="ingester_error", client="main") == 1)
    assert rel.metric("loki_relay_batch_retries_total", client="main") == 2
    assert [r["status"] for r in receiver.requests()] == [500, 500, 500]
    assert ipush(rel, {"app": "x"}, ["next"]).status_code == 204
    assert [e["line"] for e in receiver.wait_for(1)] == ["next"]


def test_drop_rate_limited_batches(loki: Loki, inproc: Any) -> None:
    receiver = loki
    rel = inproc(name="main", drop_rate_limited_batches=True)
    receiver.fail(429, 1)
    assert ipush(rel, {"app": "x"}, ["limited 1", "limited 2"]).status_code == 204
    eventually(lambda: rel.metric("loki_relay_dropped_entries_total", reason="rate_limited", client="main") == 2)
    assert rel.metric("loki_relay_batch_retries_total", client="main") == 0
    assert ipush(rel, {"app": "x"}, ["after"]).status_code == 204
    assert [e["line"] for e in receiver.wait_for(1)] == ["after"]
    assert [r["status"] for r in receiver.requests()] == [429, 204]


# ---- isolation ---------------------------------------------------------------------------------


def test_a_retrying_tenant_does_not_block_another(loki: Loki, inproc: Any) -> None:
    receiver = loki
    rel = inproc(name="main", timeout="30s", backoff_config={"min_period": "50ms", "max_period": "100ms",
                                                             "max_retries": 1000})
    receiver.fail(500, None, tenant="slow")
    assert ipush(rel, {"app": "s"}, ["stuck"], tenant="slow").status_code == 204
    time.sleep(0.3)  # the slow tenant's batch is now retrying
    t0 = time.monotonic()
    for i in range(3):
        r = ipush(rel, {"app": "f"}, [f"fast {i}"], tenant="fast")
        assert r.status_code == 204
        assert [e["line"] for e in receiver.wait_for(i + 1, tenant="fast", timeout=3)][-1] == f"fast {i}"
    assert time.monotonic() - t0 < 3
    assert receiver.entries(tenant="slow") == []
    assert rel.metric("loki_relay_buffered_entries", client="main") == 1
    receiver.clear_faults()
    assert [e["line"] for e in receiver.wait_for(1, tenant="slow", timeout=10)] == ["stuck"]


def test_a_hanging_tenant_does_not_block_another(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    rel = start_relay(config(port, client(receiver.url, name="main", timeout="30s",
                                          backoff_config={"min_period": "50ms", "max_period": "100ms",
                                                          "max_retries": 1000})))
    receiver.hang(tenant="slow")  # a real connection that never answers
    assert jpush(port, {"app": "s"}, ["stuck"], tenant="slow").status_code == 204
    time.sleep(0.3)  # the slow tenant's batch is now in flight / retrying
    t0 = time.monotonic()
    for i in range(3):
        r = jpush(port, {"app": "f"}, [f"fast {i}"], tenant="fast")
        assert r.status_code == 204
        assert [e["line"] for e in receiver.wait_for(i + 1, tenant="fast", timeout=3)][-1] == f"fast {i}"
    assert time.monotonic() - t0 < 3
    assert receiver.entries(tenant="slow") == []
    assert rel.metric("loki_relay_buffered_entries", client="main") == 1
    receiver.clear_faults()
    assert [e["line"] for e in receiver.wait_for(1, tenant="slow", timeout=10)] == ["stuck"]


def test_fanout_every_client_gets_every_entry(loki: Loki) -> None:
    """Two clients: each gets its own copy of every entry, with its own external labels and tenant."""
    cfg = config(0, client(LOKI, name="a", external_labels={"via": "a"}),
                 client(LOKI, name="b", tenant_id="tb", external_labels={"via": "b"}))
    rel = InProcessRelay(cfg, loki)
    try:
        assert ipush(rel, {"app": "f"}, ["one", "two", "three"]).status_code == 204
        got = loki.wait_for(6)
        assert sorted((e["labels"]["via"], e["tenant"], e["line"]) for e in got) == sorted(
            [("a", "", line) for line in ("one", "two", "three")]
            + [("b", "tb", line) for line in ("one", "two", "three")]
        )
        eventually(lambda: rel.metric("loki_relay_sent_entries_total", client="b") == 3)
        assert rel.metric("loki_relay_sent_entries_total", client="a") == 3
    finally:
        rel.close()


def test_a_hanging_client_does_not_block_another(receiver: Receiver, start_relay: Any) -> None:
    with Receiver.start() as stuck:
        stuck.hang()
        port = free_port()
        rel = start_relay(config(port, client(stuck.url, name="stuck", timeout="30s"), client(receiver.url, name="ok")))
        for i in range(3):
            t0 = time.monotonic()
            assert jpush(port, {"app": "x"}, [f"line {i}"]).status_code == 204
            assert time.monotonic() - t0 < 5  # the push handler never waits for a sender (30 s here)
            assert [e["line"] for e in receiver.wait_for(i + 1, timeout=3)][-1] == f"line {i}"
            time.sleep(0.15)
        assert stuck.stats()["hanging"] >= 1
        assert rel.metric("loki_relay_sent_entries_total", client="ok") == 3
        assert rel.metric("loki_relay_sent_entries_total", client="stuck") == 0
        assert rel.metric("loki_relay_buffered_entries", client="stuck") == 3
        stuck.clear_faults()


def test_timeout_is_honoured(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    rel = start_relay(config(port, client(receiver.url, name="main", timeout="500ms")))
    receiver.hang(count=1)
    t0 = time.monotonic()
    assert jpush(port, {"app": "t"}, ["after a timeout"]).status_code == 204
    assert [e["line"] for e in receiver.wait_for(1, timeout=5)] == ["after a timeout"]
    took = time.monotonic() - t0
    assert 0.5 <= took < 3, took
    reqs = receiver.requests()
    assert [r["status"] for r in reqs] == ["hang", 204]
    assert reqs[1]["time"] - reqs[0]["time"] >= 0.45
    assert rel.metric("loki_relay_send_errors_total", client="main", status="error") == 1
    assert rel.metric("loki_relay_batch_retries_total", client="main") == 1
    receiver.clear_faults()


# ---- TLS to the upstream -----------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    d = tmp_path_factory.mktemp("pki")
    (d / "san.ext").write_text("subjectAltName=DNS:loki.test,IP:127.0.0.1\n")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=relay test CA", cwd=d)
    for name, ext in (("server", ["-extfile", "san.ext"]), ("client", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", *ext, cwd=d)
    return d


def tls_recorder(pki: Path, require_client_cert: bool = False) -> Recorder:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "server.crt", pki / "server.key")
    if require_client_cert:
        ctx.load_verify_locations(pki / "ca.crt")
        ctx.verify_mode = ssl.CERT_REQUIRED
    return Recorder(ctx)


def test_tls_with_ca_file(pki: Path, start_relay: Any) -> None:
    rec = tls_recorder(pki)
    try:
        port = free_port()
        start_relay(config(port, client(rec.url, tls_config={"ca_file": str(pki / "ca.crt")})))
        assert jpush(port, {"app": "tls"}, ["over tls"]).status_code == 204
        eventually(lambda: rec.lines() == ["over tls"])
    finally:
        rec.close()


def test_tls_client_certificate(pki: Path, start_relay: Any) -> None:
    rec = tls_recorder(pki, require_client_cert=True)
    try:
        port = free_port()
        start_relay(config(port, client(rec.url, tls_config={
            "ca_file": str(pki / "ca.crt"), "cert_file": str(pki / "client.crt"), "key_file": str(pki / "client.key")})))
        assert jpush(port, {"app": "tls"}, ["mutual"]).status_code == 204
        eventually(lambda: rec.lines() == ["mutual"])
        subject = dict(x[0] for x in rec.requests[0]["peer_cert"]["subject"])
        assert subject["commonName"] == "client"
    finally:
        rec.close()


def test_tls_server_name(pki: Path, start_relay: Any) -> None:
    rec = tls_recorder(pki)
    try:
        port = free_port()
        url = rec.url.replace("127.0.0.1", "localhost")  # the certificate is for loki.test and 127.0.0.1 only
        start_relay(config(port, client(url, tls_config={"ca_file": str(pki / "ca.crt"), "server_name": "loki.test"},
                                        backoff_config={"min_period": "10ms", "max_period": "20ms", "max_retries": 1})))
        assert jpush(port, {"app": "tls"}, ["by server_name"]).status_code == 204
        eventually(lambda: rec.lines() == ["by server_name"], timeout=1.5)
    finally:
        rec.close()


def test_tls_insecure_skip_verify_and_unverified_refused(pki: Path, start_relay: Any) -> None:
    rec = tls_recorder(pki)
    try:
        p1, p2 = free_port(), free_port()
        start_relay(config(p1, client(rec.url, tls_config={"insecure_skip_verify": True})))
        assert jpush(p1, {"app": "tls"}, ["skip verify"]).status_code == 204
        eventually(lambda: rec.lines() == ["skip verify"])
        # Without the CA the certificate is not trusted: nothing is delivered, the batch is dropped.
        rel = start_relay(config(p2, client(rec.url, name="untrusted", backoff_config={
            "min_period": "10ms", "max_period": "20ms", "max_retries": 1})))
        assert jpush(p2, {"app": "tls"}, ["never"]).status_code == 204
        eventually(lambda: rel.metric("loki_relay_dropped_entries_total", client="untrusted") == 1)
        assert rec.lines() == ["skip verify"]
    finally:
        rec.close()


# ---- metrics ---------------------------------------------------------------------------------


def test_metrics_after_traffic(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    cfg = config(port, client(receiver.url, name="main"))
    cfg["scrape_configs"][0]["relabel_configs"] = [{"action": "drop", "source_labels": ["app"], "regex": "noise"}]
    rel = start_relay(cfg)
    receiver.fail(500, 1)
    assert jpush(port, {"app": "a"}, ["1", "2", "3"]).status_code == 204
    assert jpush(port, {"app": "noise"}, ["n"]).status_code == 204
    assert jpush(port, {"__x": "y"}, ["nolabel"]).status_code == 204
    assert jpush(port, {"bad-label": "y"}, ["invalid"]).status_code == 400
    receiver.wait_for(3)
    eventually(lambda: rel.metric("loki_relay_sent_entries_total", client="main") == 3)
    m = rel.metric
    assert m("loki_relay_received_entries_total", job="push") == 6
    assert m("loki_relay_received_bytes_total", job="push") > 0
    assert m("loki_relay_sent_bytes_total", client="main") > 0
    assert m("loki_relay_sent_batches_total", client="main") == 1
    assert m("loki_relay_sent_request_bytes_total", client="main") > 0
    assert m("loki_relay_dropped_entries_total", reason="relabel", job="push") == 1
    assert m("loki_relay_dropped_entries_total", reason="no_labels", job="push") == 1
    assert m("loki_relay_dropped_entries_total", reason="invalid", job="push") == 1
    for reason in ("relabel", "no_labels", "invalid"):
        assert m("loki_relay_dropped_bytes_total", reason=reason, job="push") > 0
    assert m("loki_relay_batch_retries_total", client="main") == 1
    assert m("loki_relay_request_duration_seconds_count", job="push", route="push", status="204") == 3
    assert m("loki_relay_request_duration_seconds_count", job="push", route="push", status="400") == 1
    assert m("loki_relay_request_duration_seconds_bucket", job="push", route="push", status="204", le="+Inf") == 3
    assert m("loki_relay_buffered_entries", client="main") == 0
    assert m("loki_relay_buffered_bytes", client="main") == 0
    text = rel.metrics()
    for name in ("loki_relay_buffered_entries", "loki_relay_buffered_bytes", "loki_relay_send_errors_total",
                 "loki_relay_request_duration_seconds_sum"):
        assert f"\n{name}{{" in text, name
