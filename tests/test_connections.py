"""Issue 9, item 1: idle, slow and oversized connections cannot hold a listener or the buffers.

Real relay processes on 127.0.0.1, attacked over raw sockets while a normal client pushes.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from typing import Any

import httpx
import pytest

from relay.config import ConfigError, parse_config
from tests.conftest import free_port, push_config
from tests.loki_receiver import Receiver, encode_push

HUGE = 100 << 20  # the largest body max_send_msg_size allows by default


def head(port: int, tenant: str, length: int = HUGE) -> bytes:
    return (f"POST /loki/api/v1/push HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-protobuf\r\n"
            f"X-Scope-OrgID: {tenant}\r\nContent-Length: {length}\r\n\r\n").encode()


def connect(port: int, data: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if data:
        s.sendall(data)
    return s


def answer_or_close(s: socket.socket, timeout: float) -> tuple[bytes, float]:
    """What the relay sends until it closes the connection, and when it closed (monotonic)."""
    s.settimeout(timeout)
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return got, time.monotonic()


def push(port: int, tenant: str, text: str) -> tuple[int, float]:
    body = encode_push([('{job="conn"}', [(time.time_ns(), text)])])
    start = time.monotonic()
    r = httpx.post(f"http://127.0.0.1:{port}/loki/api/v1/push", content=body, timeout=30,
                   headers={"Content-Type": "application/x-protobuf", "X-Scope-OrgID": tenant})
    return r.status_code, time.monotonic() - start


def relay_config(receiver: Receiver, port: int, **server: Any) -> dict[str, Any]:
    cfg = push_config(receiver.url, port)
    cfg["scrape_configs"][0]["loki_push_api"]["server"].update(server)
    return cfg


def test_idle_and_slow_senders_with_huge_declared_bodies_do_not_stop_others(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    relay = start_relay(relay_config(receiver, port, http_server_read_header_timeout="2s",
                                     http_server_read_timeout="3s"))
    tenants = ["a", "b", "c"]
    idle = [connect(port, head(port, t)) for t in tenants for _ in range(3)]  # headers only, then nothing
    slow = [connect(port, head(port, t)) for t in tenants]
    stop = threading.Event()

    def dribble() -> None:  # a byte of body every 200 ms: never done within the read timeout
        while not stop.wait(0.2):
            for s in slow:
                try:
                    s.send(b"\x00")
                except OSError:
                    pass

    t = threading.Thread(target=dribble, daemon=True)
    t.start()
    opened = time.monotonic()
    try:
        time.sleep(0.3)  # the attackers' requests are admitted and waiting for their bodies
        for i, tenant in enumerate([*tenants, "other"]):
            status, took = push(port, tenant, f"normal {i}")
            assert status == 204
            assert took < 1.5  # no backpressure wait (it would be 2 s and then 429)
        assert sorted(e["line"] for e in receiver.wait_for(4)) == [f"normal {i}" for i in range(4)]
        for s in idle + slow:
            got, closed_at = answer_or_close(s, 15)
            assert got.startswith(b"HTTP/1.1 408"), got[:80]
            assert closed_at - opened < 12  # read timeout of 3 s after the head, and slack for a busy machine
    finally:
        stop.set()
        t.join()
        for s in idle + slow:
            s.close()
    assert relay.metric("loki_relay_connections_refused_total", reason="read_timeout") == len(idle + slow)
    assert relay.metric("loki_relay_backpressure_requests_total") == 0


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_2000_idle_connections_are_closed_and_pin_nothing(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    relay = start_relay(relay_config(receiver, port, http_server_read_header_timeout="3s"))
    assert push(port, "warm", "warm up")[0] == 204
    before = rss_kib(relay.proc.pid)
    conns = []
    for i in range(2000):
        # Half send nothing, half an unfinished head declaring a huge body.
        conns.append(connect(port, b"" if i % 2 else head(port, f"t{i % 7}")[:-2]))
    opened = time.monotonic()
    try:
        status, took = push(port, "other", "while 2000 idle")
        assert status == 204 and took < 2.0
        closed = 0
        for s in conns:
            got, at = answer_or_close(s, max(1.0, opened + 20 - time.monotonic()))
            if got.startswith(b"HTTP/1.1 408"):
                closed += 1
        assert closed == 2000
        assert time.monotonic() - opened < 20
    finally:
        for s in conns:
            s.close()
    time.sleep(0.5)
    assert relay.metric("loki_relay_connections_refused_total", reason="header_timeout") == 2000
    grown = rss_kib(relay.proc.pid) - before
    assert grown < 40 * 1024, f"RSS grew {grown} KiB"
    assert push(port, "other", "after")[0] == 204
    assert sorted(e["line"] for e in receiver.wait_for(3)) == ["after", "warm up", "while 2000 idle"]


def test_huge_header_is_431_and_not_read_whole(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    relay = start_relay(relay_config(receiver, port))  # default http_server_max_header_bytes: 1 MiB
    s = connect(port, b"POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nX-Big: ")
    chunk = b"a" * 65536
    sent = 0
    answer = b""
    try:
        while sent < 300 << 20:
            try:
                s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            if select.select([s], [], [], 0)[0]:
                answer, _ = answer_or_close(s, 5)
                break
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
    assert sent < 16 << 20  # stopped near the 1 MiB limit, not after 300 MB
    assert relay.metric("loki_relay_connections_refused_total", reason="header_too_large") == 1
    assert push(port, "x", "still serving")[0] == 204


def test_a_normal_large_head_passes(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    start_relay(relay_config(receiver, port, http_server_max_header_bytes="64KiB"))
    body = encode_push([('{job="conn"}', [(time.time_ns(), "big head")])])
    r = httpx.post(f"http://127.0.0.1:{port}/loki/api/v1/push", content=body, timeout=10,
                   headers={"Content-Type": "application/x-protobuf", "X-Pad": "p" * 60000})
    assert r.status_code == 204
    r = httpx.post(f"http://127.0.0.1:{port}/loki/api/v1/push", content=body, timeout=10,
                   headers={"Content-Type": "application/x-protobuf", "X-Pad": "p" * 70000})
    assert r.status_code == 431


def test_connection_limit_per_listener(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    relay = start_relay(relay_config(receiver, port, http_listen_conn_limit=20, http_server_read_header_timeout="2s"))
    held = [connect(port) for _ in range(20)]
    try:
        time.sleep(0.3)
        extra = connect(port)
        got, _ = answer_or_close(extra, 5)
        extra.close()
        assert got.startswith(b"HTTP/1.1 503"), got[:80]
        # The server port is another listener with its own limit: still answering.
        assert httpx.get(f"http://127.0.0.1:{relay.server_port}/ready", timeout=5).status_code == 200
    finally:
        for s in held:
            s.close()
    time.sleep(0.3)
    assert push(port, "x", "room again")[0] == 204
    assert relay.metric("loki_relay_connections_refused_total", reason="conn_limit") == 1


def test_server_keys_parse_and_are_checked() -> None:
    cfg = parse_config({"server": {"http_server_read_timeout": "1m", "http_server_read_header_timeout": "5s",
                                   "http_server_idle_timeout": "2m", "http_listen_conn_limit": 10,
                                   "http_server_max_header_bytes": "64KiB"}})
    s = cfg.server
    assert (s.read_timeout, s.read_header_timeout, s.idle_timeout, s.conn_limit, s.max_header_bytes) == \
        (60.0, 5.0, 120.0, 10, 64 << 10)
    d = parse_config({}).server
    assert (d.read_timeout, d.read_header_timeout, d.idle_timeout, d.conn_limit, d.max_header_bytes) == \
        (30.0, 10.0, 120.0, 4096, 1 << 20)
    with pytest.raises(ConfigError, match="http_listen_conn_limit"):
        parse_config({"server": {"http_listen_conn_limit": -1}})
    with pytest.raises(ConfigError, match="http_server_read_timeout"):
        parse_config({"server": {"http_server_read_timeout": "soon"}})
