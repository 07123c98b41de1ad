"""Every accepted entry goes to every client, as in Promtail; and what that holds.

The fan-out accounts, per tenant, for the bytes accepted and the bytes each client
has settled (sent, or dropped for good). Clients settle a tenant's chunks in the
order they were accepted, so what is still needed by some client is exactly
`accepted - min(settled by each client)`: that is the memory the relay holds for
the tenant (chunks are shared between clients, not copied), and what
`limits_config.max_buffered_bytes(_per_tenant)` bound. The same running totals
tell when a write-ahead-log record has been confirmed by every client.
Everything here is per request or per batch, never per entry.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from prometheus_client import Gauge

from .. import metrics
from ..model import CHUNK_OVERHEAD, CHUNK_SIZE, Chunk
from .client import LokiClient

held_bytes = Gauge(
    "loki_relay_held_bytes",
    "Bytes held for delivery (not yet settled by every client): encoded entries plus a fixed cost per "
    "queued chunk; bounded by limits_config.max_buffered_bytes.",
    registry=metrics.REGISTRY,
)
held_limit = Gauge(
    "loki_relay_held_bytes_limit",
    "limits_config.max_buffered_bytes (0: no limit), for graphing loki_relay_held_bytes against it.",
    registry=metrics.REGISTRY,
)


MAX_WAITERS = 512  # requests waiting for room at once; more are refused at once


class Ticket:
    """One request's admission: the room its body takes as it arrives, released once the request
    is done (or its connection closes).

    The room is the bytes actually received (`add`), not the declared Content-Length: a sender
    that declares 100 MiB and sends nothing holds nothing.
    """

    __slots__ = ("done", "fanout", "size", "tenant")

    def __init__(self, fanout: Fanout, tenant: str, size: int = 0) -> None:
        self.fanout = fanout
        self.tenant = tenant
        self.size = size
        self.done = False
        if size:
            fanout._reserve(tenant, size)

    def add(self, n: int) -> None:
        """`n` more body bytes arrived (ignored once released)."""
        if n and not self.done:
            self.size += n
            self.fanout._reserve(self.tenant, n)

    def release(self) -> None:
        self.done = True
        if self.size:
            self.fanout.unreserve({self.tenant: self.size})
            self.size = 0


class Log(Protocol):
    """What the fan-out and ingest need of the write-ahead log (relay.sink.wal.WriteAheadLog)."""

    def append(self, by_tenant: dict[str, list[Chunk]]) -> tuple[dict[str, int], asyncio.Future[None]]: ...

    def confirm(self, segment: int) -> None: ...


class _Tenant:
    __slots__ = ("accepted", "floor", "records", "settled")

    def __init__(self, clients: int) -> None:
        self.accepted = 0  # cumulative bytes accepted
        self.settled = [0] * clients  # cumulative bytes each client has settled
        self.floor = 0  # min(settled): bytes every client is done with
        self.records: deque[tuple[int, int]] = deque()  # WAL records: (accepted total at its end, segment)


class Fanout:
    def __init__(self, clients: list[LokiClient], wal: Log | None = None,
                 max_bytes: int = 0, max_bytes_per_tenant: int = 0) -> None:
        self.clients = clients
        self.wal = wal
        self.max_bytes = max_bytes or (1 << 62)
        held_limit.set(max_bytes)
        self.max_bytes_per_tenant = max_bytes_per_tenant or (1 << 62)
        self.held = 0  # bytes held for delivery, all tenants
        self.reserved = 0  # bytes of requests admitted but waiting for the WAL
        self._reserved: dict[str, int] = {}
        self._tenants: dict[str, _Tenant] = {}
        self._freed: asyncio.Future[None] | None = None  # resolved when bytes are released
        self._waiting = 0
        self._refused_at = -1e9  # monotonic time of the last refusal for max_buffered_bytes
        for i, c in enumerate(clients):
            c.on_done = self._settler(i)
            c.durable = wal is not None

    @property
    def tenants(self) -> int:
        """Tenants with bytes held."""
        return len(self._tenants)

    def tenant_held(self, tenant: str) -> int:
        t = self._tenants.get(tenant)
        return (t.accepted - t.floor if t else 0) + self._reserved.get(tenant, 0)

    def full(self, tenant: str | None = None) -> str:
        """Why nothing more can be taken now (cheap check before decoding), or ""."""
        if self.held + self.reserved >= self.max_bytes:
            return "max_buffered_bytes"
        if tenant is not None and self.tenant_held(tenant) >= self.max_bytes_per_tenant:
            return "max_buffered_bytes_per_tenant"
        return ""

    def _fits(self, tenant: str, size: int) -> str:
        """Why `size` more bytes for `tenant` would not be taken now, or ""."""
        held = self.held + self.reserved
        if held >= self.max_bytes or (held and held + size > self.max_bytes):
            return "max_buffered_bytes"
        th = self.tenant_held(tenant)
        if th >= self.max_bytes_per_tenant or (th and th + size > self.max_bytes_per_tenant):
            return "max_buffered_bytes_per_tenant"
        return ""

    async def room(self, tenant: str, size: int, wait: float) -> Ticket | str:
        """Wait up to `wait` seconds until `size` bytes for `tenant` fit.

        Returns a Ticket, which reserves the body's bytes as they arrive (so an idle sender
        declaring a large body holds no room), or the limit still hit. Few waiters at a time:
        each holds a connection (and the kernel's buffers), not decoded data.
        """
        why = self._fits(tenant, size)
        if why and wait > 0 and self._waiting < MAX_WAITERS:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while why and loop.time() < deadline:
                await self.freed(deadline - loop.time())
                why = self._fits(tenant, size)
        if why:
            self._refused(why)
            return why
        return Ticket(self, tenant)

    def _refused(self, why: str) -> None:
        if why == "max_buffered_bytes":
            self._refused_at = time.monotonic()

    def refusing(self, window: float = 5.0) -> str:
        """"max_buffered_bytes" if a request was refused for it in the last `window` seconds, else "".

        Only the limit of the whole relay counts: one tenant at its own limit does not make the
        instance a worse choice for the others. The window keeps readiness from flapping between
        a refusal and the next freed batch.
        """
        return "max_buffered_bytes" if time.monotonic() - self._refused_at < window else ""

    async def freed(self, timeout: float) -> None:
        """Return when some held or reserved bytes are released, or after `timeout` seconds."""
        if self._freed is None or self._freed.done():
            self._freed = asyncio.get_running_loop().create_future()
        self._waiting += 1
        try:
            await asyncio.wait_for(asyncio.shield(self._freed), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiting -= 1

    def _release(self) -> None:
        if self._freed is not None and not self._freed.done():
            self._freed.set_result(None)

    def admit(self, sizes: dict[str, int], ticket: Ticket | None = None) -> str:
        """Reserve room for a request's bytes per tenant; "" if admitted, else the limit hit.

        A request is taken when it fits, or when nothing else is held (so one request larger
        than a limit is not refused forever); the request's own ticket does not count against
        it. Release with `unreserve` once added or failed.
        """
        own = ticket.size if ticket is not None else 0
        total = sum(sizes.values())
        held = self.held + self.reserved - own
        if held and held + total > self.max_bytes:
            self._refused("max_buffered_bytes")
            return "max_buffered_bytes"
        for tenant, size in sizes.items():
            th = self.tenant_held(tenant) - (own if ticket is not None and ticket.tenant == tenant else 0)
            if th and th + size > self.max_bytes_per_tenant:
                return "max_buffered_bytes_per_tenant"
        for tenant, size in sizes.items():
            self._reserve(tenant, size)
        return ""

    def _reserve(self, tenant: str, size: int) -> None:
        if size:
            self.reserved += size
            self._reserved[tenant] = self._reserved.get(tenant, 0) + size

    def unreserve(self, sizes: dict[str, int]) -> None:
        for tenant, size in sizes.items():
            if not size:
                continue
            left = self._reserved[tenant] - size
            if left:
                self._reserved[tenant] = left
            else:
                del self._reserved[tenant]
            self.reserved -= size
        self._release()

    def add(self, by_tenant: dict[str, list[Chunk]], segments: dict[str, int] | None = None) -> None:
        """Queue chunks for every client; `segments` names each tenant's WAL record segment."""
        for tenant, chunks in by_tenant.items():
            if not self.clients:
                if segments and self.wal is not None:
                    self.wal.confirm(segments[tenant])
                continue
            t = self._tenants.get(tenant)
            if t is None:
                t = self._tenants[tenant] = _Tenant(len(self.clients))
            encoded = sum(map(CHUNK_SIZE, chunks))
            size = encoded + CHUNK_OVERHEAD * len(chunks)  # as held_size, the unit of everything here
            t.accepted += size
            self.held += size
            if segments is not None:
                t.records.append((t.accepted, segments[tenant]))
            for client in self.clients:
                client.add(tenant, chunks, encoded)
        held_bytes.set(self.held)

    def _settler(self, i: int) -> Callable[[str, int], None]:
        def settled(tenant: str, size: int) -> None:
            t = self._tenants[tenant]
            t.settled[i] += size
            floor = min(t.settled)
            if floor <= t.floor:
                return
            self.held -= floor - t.floor
            t.floor = floor
            held_bytes.set(self.held)
            self._release()
            recs = t.records
            while recs and recs[0][0] <= floor:
                _, segment = recs.popleft()
                if self.wal is not None:
                    self.wal.confirm(segment)
            if floor == t.accepted and not recs:
                del self._tenants[tenant]  # all settled: a tenant seen once costs nothing later

        return settled

    async def close(self, timeout: float) -> None:
        await asyncio.gather(*(c.close(timeout) for c in self.clients))
