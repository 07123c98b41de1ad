"""Issue 9, item 4: tenant ids as Loki checks them; idle tenants retired; thousands of tenants share a
client's connection pool without pool timeouts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from relay.config import ClientConfig
from relay.model import Chunk
from relay.sink.client import LokiClient, SendResult
from relay.sink.fanout import Fanout
from relay.tenant import tenant_error
from tests.conftest import free_port, push_config
from tests.loki_receiver import Receiver, encode_push


@pytest.mark.parametrize("tenant", ["", "team-a", "A.b_c*d'e(f)!9", "x" * 150, "..."])
def test_valid_tenants(tenant: str) -> None:
    assert tenant_error(tenant) == ""


@pytest.mark.parametrize(("tenant", "why"), [
    ("x" * 151, "too long"), (".", "not allowed"), ("..", "not allowed"), ("a/b", "'/'"), ("a b", "' '"),
    ("tëam", "'ë'"), ("a|b", "'|'"), ("a\nb", "'\\n'"), ("a:b", "':'"),
])
def test_invalid_tenants(tenant: str, why: str) -> None:
    assert why in tenant_error(tenant)


def test_push_with_an_invalid_tenant_is_400_and_nothing_is_held(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    relay = start_relay(push_config(receiver.url, port))
    body = encode_push([('{job="t"}', [(time.time_ns(), "line")])])
    url = f"http://127.0.0.1:{port}/loki/api/v1/push"
    for tenant, status, why in (("x" * 1000, 400, "too long"), ("a/b", 400, "unsupported character"),
                                ("x" * (1 << 20), 431, "too large")):  # over the head size cap: not even read
        r = httpx.post(url, content=body, headers={"Content-Type": "application/x-protobuf", "X-Scope-OrgID": tenant},
                       timeout=10)
        assert r.status_code == status and why in r.text
    r = httpx.post(url, content=body, headers={"Content-Type": "application/x-protobuf", "X-Scope-OrgID": "ok"}, timeout=10)
    assert r.status_code == 204
    assert [e["line"] for e in receiver.wait_for(1, tenant="ok")] == ["line"]
    assert relay.metric("loki_relay_received_entries_total") == 1


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for `condition`, polling; the time it takes depends on the machine's load, the outcome does not."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_idle_tenants_are_retired_and_come_back() -> None:
    sent: list[str] = []

    async def transport(tenant: str, body: bytes) -> SendResult:
        sent.append(tenant)
        return SendResult(204)

    async def run() -> None:
        client = LokiClient(ClientConfig(url="http://127.0.0.1:1/push", batchwait=0.01), transport)
        client.idle = 0.3
        fanout = Fanout([client])
        chunk = Chunk('{job="x"}', b"data", 1, 4)
        fanout.add({f"t{i}": [chunk] for i in range(500)})
        assert client.tenants == 500 and fanout.tenants == 500
        await until(lambda: len(sent) == 500 and fanout.tenants == 0 and fanout.held == 0)  # settled: nothing kept
        assert sorted(sent) == sorted(f"t{i}" for i in range(500))
        await until(lambda: client.tenants == 0)  # senders ended after `idle`
        fanout.add({"t7": [chunk]})
        await until(lambda: sent.count("t7") == 2 and fanout.held == 0)
        assert len(sent) == 501
        await fanout.close(1)

    asyncio.run(run())


def test_sends_per_client_are_bounded() -> None:
    in_flight = [0, 0]  # now, most

    async def transport(tenant: str, body: bytes) -> SendResult:
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        await asyncio.sleep(0.05)
        in_flight[0] -= 1
        return SendResult(204)

    async def run() -> None:
        from relay.sink.client import MAX_SENDS

        client = LokiClient(ClientConfig(url="http://127.0.0.1:1/push", batchwait=0.01), transport)
        fanout = Fanout([client])
        fanout.add({f"t{i}": [Chunk('{job="x"}', b"d", 1, 1)] for i in range(300)})
        deadline = time.monotonic() + 10
        while fanout.held and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert fanout.held == 0
        assert in_flight[1] == MAX_SENDS
        await fanout.close(1)

    asyncio.run(run())


@pytest.mark.timeout(180)
def test_3000_tenants_are_delivered_without_pool_timeouts(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    cfg = push_config(receiver.url, port)
    cfg["clients"][0]["timeout"] = "5s"
    relay = start_relay(cfg)
    url = f"http://127.0.0.1:{port}/loki/api/v1/push"
    tenants = 3000

    def push(worker: int) -> list[int]:
        statuses = []
        with httpx.Client(timeout=30) as http:
            for i in range(worker, tenants, 8):
                body = encode_push([('{job="many"}', [(time.time_ns(), f"tenant {i}")])])
                statuses.append(http.post(url, content=body, headers={
                    "Content-Type": "application/x-protobuf", "X-Scope-OrgID": f"t{i}"}).status_code)
        return statuses

    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = [s for part in pool.map(push, range(8)) for s in part]
    assert statuses == [204] * tenants
    deadline = start + 120
    while relay.metric("loki_relay_sent_entries_total") < tenants and time.monotonic() < deadline:
        time.sleep(0.1)
    assert relay.metric("loki_relay_sent_entries_total") == tenants
    assert relay.metric("loki_relay_send_errors_total") == 0  # no pool (or any other) timeouts
    got = {e["line"] for e in receiver.entries()}
    assert got == {f"tenant {i}" for i in range(tenants)}
    assert {r["headers"]["x-scope-orgid"] for r in receiver.requests()} == {f"t{i}" for i in range(tenants)}
