"""Bounded memory: over a buffer limit the relay answers 429 + Retry-After, and never loses a 2xx."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from relay.config import ConfigError, parse_config
from tests.conftest import free_port
from tests.loki_receiver import Receiver, encode_push
from tests.test_faults import Pusher, fault_config, wait_lines

# Refused pushes wait this long for room first (2 s by default): short, so refusals come quickly.
WAIT = "500ms"


def limited(url: str, port: int, **limits: str) -> dict:
    cfg = fault_config(url, port)
    cfg["limits_config"] = limits
    return cfg


def fill(p: Pusher, http: httpx.Client, most: int = 2000) -> int | None:
    """Push until refused; returns the refusing answer."""
    for _ in range(most):
        status = p.push_one(http)
        if status == 429:
            return status
    return None


def test_global_limit_answers_429_and_delivers_every_2xx(start_relay, receiver: Receiver) -> None:
    port = free_port()
    relay = start_relay(limited(receiver.url, port, max_buffered_bytes="64KiB", backpressure_wait=WAIT))
    receiver.fail(503, count=None)  # Loki down: everything accepted stays held
    p = Pusher(relay.url(port), "global")
    with httpx.Client() as http:
        assert fill(p, http) == 429
        now = time.time_ns()
        body = encode_push([('{job="x"}', [(now + i, f"{'y' * 100} {i}") for i in range(100)])])
        r = http.post(relay.url(port), content=body, headers={"content-type": "application/x-protobuf"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "max_buffered_bytes" in r.text
    assert 0 < len(p.acked) < 2000 * 20
    held = relay.metric("loki_relay_held_bytes")
    assert 32 * 1024 < held <= 64 * 1024 + 4096  # the limit plus at most one request
    assert relay.metric("loki_relay_backpressure_requests_total", reason="max_buffered_bytes") >= 1
    assert relay.metric("loki_relay_dropped_entries_total") == 0
    receiver.clear_faults()
    wait_lines(receiver, p.acked, 30)
    with httpx.Client() as http:
        assert p.push_one(http) == 204  # room again
    assert relay.metric("loki_relay_dropped_entries_total") == 0


def test_per_tenant_limit_does_not_starve_other_tenants(start_relay, receiver: Receiver) -> None:
    port = free_port()
    relay = start_relay(limited(receiver.url, port, max_buffered_bytes="1MiB", max_buffered_bytes_per_tenant="32KiB",
                                backpressure_wait=WAIT))
    receiver.fail(503, count=None, tenant="greedy")
    greedy = Pusher(relay.url(port), "greedy", tenant="greedy")
    polite = Pusher(relay.url(port), "polite", tenant="polite")
    with httpx.Client() as http:
        assert fill(greedy, http) == 429
        for _ in range(50):
            assert polite.push_one(http) == 204
    wait_lines(receiver, polite.acked, 10)
    assert relay.metric("loki_relay_backpressure_requests_total", reason="max_buffered_bytes_per_tenant") >= 1
    receiver.clear_faults()
    wait_lines(receiver, greedy.acked, 30)


def test_full_wal_is_backpressure_not_loss(start_relay, receiver: Receiver, tmp_path: Path) -> None:
    port = free_port()
    cfg = fault_config(receiver.url, port)
    cfg["wal"] = {"enabled": True, "dir": str(tmp_path / "wal"), "max_size": "64KiB", "segment_size": "16KiB"}
    relay = start_relay(cfg)
    receiver.fail(503, count=None)
    p = Pusher(relay.url(port), "walfull")
    with httpx.Client() as http:
        assert fill(p, http) == 429
    assert relay.metric("loki_relay_backpressure_requests_total", reason="wal_full") >= 1
    assert relay.metric("loki_relay_wal_bytes") <= 64 * 1024
    receiver.clear_faults()
    wait_lines(receiver, p.acked, 30)
    with httpx.Client() as http:  # segments confirmed and removed: room again
        for _ in range(50):
            assert p.push_one(http) == 204


def test_raw_endpoint_gets_backpressure_too(start_relay, receiver: Receiver) -> None:
    port = free_port()
    cfg = limited(receiver.url, port, max_buffered_bytes="16KiB", backpressure_wait=WAIT)
    cfg["scrape_configs"][0]["loki_push_api"]["labels"] = {"job": "raw"}
    relay = start_relay(cfg)
    receiver.fail(503, count=None)
    statuses = set()
    with httpx.Client() as http:
        for i in range(200):
            body = "".join(f"raw {i} {j} {'x' * 50}\n" for j in range(20)).encode()
            statuses.add(http.post(relay.url(port, "/promtail/api/v1/raw"), content=body).status_code)
            if 429 in statuses:
                break
    assert statuses == {204, 429}


def test_limits_config_keys() -> None:
    cfg = parse_config({"limits_config": {"max_buffered_bytes": "1GiB", "max_buffered_bytes_per_tenant": "100MB"}})
    assert (cfg.limits.max_buffered_bytes, cfg.limits.max_buffered_bytes_per_tenant) == (1 << 30, 100_000_000)
    default = parse_config({})
    assert (default.limits.max_buffered_bytes, default.limits.max_buffered_bytes_per_tenant) == (256 << 20, 64 << 20)
    with pytest.raises(ConfigError, match="limits_config.max_buffered_bytes"):
        parse_config({"limits_config": {"max_buffered_bytes": "lots"}})


def _fill_to_limit(relay, p: Pusher, http: httpx.Client, limit: int) -> None:
    """Push until the next push cannot fit. Held bytes are the entries as re-encoded for Loki, not
    the compressed body, so the next push will hold what the last one added."""
    held = relay.metric("loki_relay_held_bytes")
    for _ in range(2000):
        if p.push_one(http) == 429:
            return
        now = relay.metric("loki_relay_held_bytes")
        if now + (now - held) > limit:
            return
        held = now
    raise AssertionError("the buffer never filled")


def test_a_push_waits_for_room_instead_of_being_refused(start_relay, receiver: Receiver) -> None:
    port = free_port()
    relay = start_relay(limited(receiver.url, port, max_buffered_bytes="64KiB", backpressure_wait="8s"))
    receiver.fail(503, count=None)
    p = Pusher(relay.url(port), "wait")
    with httpx.Client(timeout=30) as http:
        _fill_to_limit(relay, p, http, 64 * 1024)
        refused = relay.metric("loki_relay_backpressure_requests_total")
        threading.Timer(1.0, receiver.clear_faults).start()  # Loki comes back while the push waits
        start = time.monotonic()
        status = p.push_one(http)
        waited = time.monotonic() - start
    assert status == 204
    assert 0.8 < waited < 8
    wait_lines(receiver, p.acked, 30)
    assert relay.metric("loki_relay_backpressure_requests_total") == refused


def test_no_wait_refuses_at_once(start_relay, receiver: Receiver) -> None:
    port = free_port()
    relay = start_relay(limited(receiver.url, port, max_buffered_bytes="64KiB", backpressure_wait="0s"))
    receiver.fail(503, count=None)
    p = Pusher(relay.url(port), "nowait")
    with httpx.Client(timeout=30) as http:
        _fill_to_limit(relay, p, http, 64 * 1024)
        start = time.monotonic()
        assert p.push_one(http) == 429
        assert time.monotonic() - start < 1.5  # no wait for room (the default would be 2 s)
    receiver.clear_faults()
    wait_lines(receiver, p.acked, 30)
