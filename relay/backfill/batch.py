"""One batch shared by every unit in flight, so that small objects still make full pushes.

Units add their processed chunks to the open batch. It is sent when it reaches the
batch size (the unit that filled it waits for the push: that holds the readers back to
Loki's pace) or when it has been open for the client's batchwait (a slow or rate-limited
run still makes progress). A unit remembers every batch it put entries in; it is done,
and may be checkpointed, once all of them were acknowledged.

A batch Loki refuses (a 4xx, or errors past the retries) is pushed again one unit's part
at a time, so that only the units at fault fail: Loki stores an entry once, so what it
had already taken is not duplicated. Not when Loki was rate limiting or the run is
stopping: more pushes would not help.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .deps import CHUNK_SIZE, RATE_LIMITED, SHUTDOWN, Chunk

Chunks = dict[str, list[Chunk]]  # tenant -> chunks


class SendFailed(Exception):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # the client's: rate_limited, ingester_error, shutdown


class Batch:
    __slots__ = ("done", "entries", "failed", "parts", "size")

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.parts: dict[str, Chunks] = {}  # unit id -> its chunks
        self.size = 0
        self.entries = 0
        self.failed: dict[str, str] = {}  # unit id -> why Loki did not take its part
        self.done = done  # set once pushed (or given up)

    def chunks(self) -> Chunks:
        out: Chunks = {}
        for part in self.parts.values():
            for tenant, cs in part.items():
                out.setdefault(tenant, []).extend(cs)
        return out


class Batcher:
    def __init__(self, send: Callable[[Chunks, int], Awaitable[None]], max_bytes: int, linger: float) -> None:
        """`send(chunks, entries)` pushes to every client; raises SendFailed."""
        self.send = send
        self.max_bytes = max_bytes
        self.linger = linger
        self.open: Batch | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.background: set[asyncio.Task[None]] = set()

    async def add(self, unit: str, chunks: Chunks) -> Batch:
        """Put a unit's processed chunks in the open batch; returns that batch."""
        batch = self.open
        if batch is None:
            loop = asyncio.get_running_loop()
            batch = self.open = Batch(loop.create_future())
            self.timer = loop.call_later(self.linger, self._expire, batch)
        part = batch.parts.setdefault(unit, {})
        for tenant, cs in chunks.items():
            part.setdefault(tenant, []).extend(cs)
            batch.size += sum(map(CHUNK_SIZE, cs))
            batch.entries += sum(c.count for c in cs)
        if batch.size >= self.max_bytes:
            self._seal()
            await self._push(batch)
        return batch

    def _seal(self) -> None:
        self.open = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expire(self, batch: Batch) -> None:
        if self.open is batch:
            self._seal()
            task = asyncio.ensure_future(self._push(batch))
            self.background.add(task)
            task.add_done_callback(self.background.discard)

    async def _push(self, batch: Batch) -> None:
        try:
            try:
                await self.send(batch.chunks(), batch.entries)
            except SendFailed as e:
                if len(batch.parts) == 1 or e.reason in (RATE_LIMITED, SHUTDOWN):
                    batch.failed = dict.fromkeys(batch.parts, str(e))
                    return
                for unit, part in batch.parts.items():
                    try:
                        await self.send(part, sum(c.count for cs in part.values() for c in cs))
                    except SendFailed as one:
                        batch.failed[unit] = str(one)
        except BaseException:
            batch.failed = dict.fromkeys(batch.parts, "not sent: the run was stopped")
            raise
        finally:
            batch.parts.clear()  # the chunks are no longer needed: let them go
            batch.done.set_result(None)

    async def close(self) -> None:
        """Send what is open and wait for every push."""
        batch = self.open
        if batch is not None:
            self._seal()
            await self._push(batch)
        while self.background:
            await asyncio.gather(*self.background)


async def outcome(unit: str, batches: list[Batch]) -> str:
    """"" once Loki took the unit's part of every batch, else why it did not."""
    for batch in batches:
        await batch.done
        why = batch.failed.get(unit, "")
        if why:
            return why
    return ""
