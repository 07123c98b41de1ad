"""Issue 2, item 9: on SIGTERM/SIGINT stop accepting, flush every buffered batch (bounded), exit 0."""

from __future__ import annotations

import signal
import time
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import free_port
from tests.loki_receiver import Receiver


def jpush(port: int, labels: dict[str, str], lines: list[str], tenant: str | None = None) -> httpx.Response:
    now = time.time_ns()
    doc = {"streams": [{"stream": labels, "values": [[str(now + i), ln] for i, ln in enumerate(lines)]}]}
    headers = {"Content-Type": "application/json"}
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    return httpx.post(f"http://127.0.0.1:{port}/loki/api/v1/push", content=orjson.dumps(doc), headers=headers, timeout=10)


def config(port: int, *urls: str, **client: Any) -> dict[str, Any]:
    return {
        "clients": [{"url": u, "batchwait": "30s", "batchsize": "10MB",
                     "backoff_config": {"min_period": "50ms", "max_period": "200ms"}, **client} for u in urls],
        "scrape_configs": [{"job_name": "push", "loki_push_api": {
            "server": {"http_listen_address": "127.0.0.1", "http_listen_port": port}}}],
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_flushes_buffered_entries_and_exits_0(receiver: Receiver, start_relay: Any, sig: int) -> None:
    port = free_port()
    rel = start_relay(config(port, receiver.url))
    lines = [f"buffered {i}" for i in range(50)]
    for tenant in ("", "t1", "t2"):
        for i in range(0, 50, 10):
            assert jpush(port, {"app": "shut"}, lines[i:i + 10], tenant).status_code == 204
    time.sleep(0.3)
    assert receiver.requests() == []  # all still waiting for the 30s batchwait
    assert rel.metric("loki_relay_buffered_entries") == 150
    t0 = time.monotonic()
    assert rel.stop(sig, timeout=15) == 0, rel.log()
    assert time.monotonic() - t0 < 5
    for tenant in ("", "t1", "t2"):
        assert [e["line"] for e in receiver.entries(tenant=tenant)] == lines
    assert "shutting down" in rel.log()


def test_shutdown_flushes_every_client_and_retries_while_draining(receiver: Receiver, start_relay: Any) -> None:
    with Receiver.start() as second:
        port = free_port()
        rel = start_relay(config(port, receiver.url, second.url))
        assert jpush(port, {"app": "x"}, ["a", "b"]).status_code == 204
        second.fail(503, 2)
        assert rel.stop(signal.SIGTERM, timeout=15) == 0, rel.log()
        assert [e["line"] for e in receiver.entries()] == ["a", "b"]
        assert [e["line"] for e in second.entries()] == ["a", "b"]
        assert [r["status"] for r in second.requests()] == [503, 503, 204]


def test_drain_is_bounded_when_loki_hangs(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    cfg = config(port, receiver.url, timeout="60s")
    cfg["server"] = {"graceful_shutdown_timeout": "1s"}
    rel = start_relay(cfg)
    receiver.hang()
    assert jpush(port, {"app": "x"}, ["never"]).status_code == 204
    t0 = time.monotonic()
    code = rel.stop(signal.SIGTERM, timeout=15)
    took = time.monotonic() - t0
    receiver.clear_faults()
    assert code == 0, rel.log()
    assert took < 6, took
    errors = [ln for ln in rel.log().splitlines() if "level=error" in ln and "dropped" in ln]
    assert errors, rel.log()  # the loss is reported, never silent


def test_stops_accepting_after_the_signal(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    rel = start_relay(config(port, receiver.url))
    assert jpush(port, {"app": "x"}, ["before"]).status_code == 204
    assert rel.stop(signal.SIGTERM, timeout=15) == 0
    with pytest.raises(httpx.HTTPError):
        jpush(port, {"app": "x"}, ["after"])
    assert [e["line"] for e in receiver.entries()] == ["before"]
