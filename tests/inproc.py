"""The relay in one process with the test: its job apps called over ASGI, its clients sending to an
in-process Loki, all on one event loop in a background thread.

For tests whose point is the data path (static labels, relabeling, tenants, the fan-out, the client's
queue and retries): no port, no process start. What only a process shows (ports, signals, kill -9,
the CLI, TLS) stays with `tests.conftest.RelayProcess` and `tests.loki_receiver.Receiver`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

from relay import metrics
from relay.config import parse_config
from relay.server import Relay
from relay.sink.client import SendResult
from tests.loki_receiver import DEFAULT_LIMITS, process_push

T = TypeVar("T")


class Loki:
    """An in-process Loki for `LokiClient`'s transport: decodes and validates each push as the Loki
    stand-in (tests/loki_receiver.py) does, keeps the accepted entries, and answers faults on demand."""

    def __init__(self, **limits: Any) -> None:
        self.limits = {**DEFAULT_LIMITS, **limits}
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}
        self._faults: list[dict[str, Any]] = []
        self._entries: list[dict[str, Any]] = []
        self._requests: list[dict[str, Any]] = []

    async def send(self, tenant: str, body: bytes) -> SendResult:
        fault = self._take_fault(tenant)
        if fault is not None:
            with self._lock:
                self._requests.append({"tenant": tenant, "status": fault["status"], "accepted": 0,
                                       "time": time.time()})
            return SendResult(fault["status"], fault["retry_after"], f"injected {fault['status']}")
        status, msg, accepted, _ = process_push(body, "application/x-protobuf", None, self.limits, self._cache)
        with self._lock:
            self._requests.append({"tenant": tenant, "status": status, "accepted": len(accepted), "time": time.time()})
            for labels, raw, ts, line, sm in accepted:
                self._entries.append({"tenant": tenant, "labels": labels, "labels_raw": raw, "ts": ts, "line": line,
                                      "metadata": sm})
        return SendResult(status, None, msg)

    def _take_fault(self, tenant: str) -> dict[str, Any] | None:
        with self._lock:
            for i, f in enumerate(self._faults):
                if f["tenant"] is not None and f["tenant"] != tenant:
                    continue
                if f["count"] is not None:
                    f["count"] -= 1
                    if f["count"] <= 0:
                        del self._faults[i]
                return f
        return None

    def fail(self, status: int, count: int | None = 1, *, tenant: str | None = None,
             retry_after: float | None = None) -> None:
        """Answer the next `count` pushes (of `tenant`, or any) with `status` (None: until cleared)."""
        with self._lock:
            self._faults.append({"status": status, "count": count, "tenant": tenant, "retry_after": retry_after})

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = []

    def entries(self, tenant: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._entries if tenant is None or e["tenant"] == tenant]

    def lines(self, tenant: str | None = None) -> list[str]:
        return [e["line"] for e in self.entries(tenant)]

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    def rejected(self) -> int:
        """Pushes Loki itself refused (not injected faults)."""
        with self._lock:
            return sum(1 for r in self._requests if r["status"] >= 400 and r["accepted"] == 0)

    def wait_for(self, n: int, timeout: float = 10.0, tenant: str | None = None) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(got := self.entries(tenant)) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return got


class InProcessRelay:
    """`Relay(config)` with every client sending to `loki`. `post(job, path, ...)` calls a job's app."""

    def __init__(self, config: dict[str, Any], loki: Loki) -> None:
        self.loki = loki
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="in-process relay", daemon=True)
        self._thread.start()
        self._before = _samples()
        self.relay = self._run(self._make(config))
        jobs = zip(self.relay.ingests, self.relay.listeners()[1:])  # listeners: the server port first, then each job
        self._apps = {ingest.job.name: app for ingest, (_, app, _) in jobs}
        self._http = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://relay")
                      for name, app in self._apps.items()}

    async def _make(self, config: dict[str, Any]) -> Relay:
        return Relay(parse_config(config), transport=self.loki.send)

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def post(self, job: str, path: str, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._run(self._http[job].post(path, content=content, headers=headers))

    def metric(self, name: str, **labels: str) -> float:
        """What `name` (summed over samples with `labels`) grew by since this relay was made: the
        metrics registry is the process's, shared with earlier tests."""
        return _sum(_samples(), name, labels) - _sum(self._before, name, labels)

    def close(self) -> None:
        async def shut() -> None:
            for http in self._http.values():
                await http.aclose()
            await self.relay.sink.close(5.0)

        try:
            self._run(shut())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


def _samples() -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, dict(s.labels), s.value) for fam in metrics.REGISTRY.collect() for s in fam.samples]


def _sum(samples: list[tuple[str, dict[str, str], float]], name: str, labels: dict[str, str]) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == w for k, w in labels.items()))
