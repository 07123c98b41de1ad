"""One batch shared by every unit in flight, so that small objects still make full pushes.

Units add their processed chunks to the open batch. It is sent when it reaches the
batch size (the unit that filled it waits for the push: that holds the readers back to
Loki's pace) or when it has been open for the client's batchwait (a slow or rate-limited
run still makes progress). A unit remembers every batch it put entries in; it is done,
and may be checkpointed, once all of them were acknowledged. A batch that Loki would not
take fails every unit with entries in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .deps import CHUNK_SIZE, Chunk

Chunks = dict[str, list[Chunk]]  # tenant -> chunks


class SendFailed(Exception):
    pass


class Batch:
    __slots__ = ("acked", "chunks", "entries", "size")

    def __init__(self, acked: asyncio.Future[str]) -> None:
        self.chunks: Chunks = {}
        self.size = 0
        self.entries = 0
        self.acked = acked  # "" once every client took it, else why not


class Batcher:
    def __init__(self, send: Callable[[Chunks, int], Awaitable[None]], max_bytes: int, linger: float) -> None:
        """`send(chunks, entries)` pushes one batch to every client; raises SendFailed."""
        self.send = send
        self.max_bytes = max_bytes
        self.linger = linger
        self.open: Batch | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.background: set[asyncio.Task[None]] = set()
        self.batches = 0

    async def add(self, chunks: Chunks) -> Batch:
        """Put a unit's processed chunks in the open batch; returns that batch."""
        batch = self.open
        if batch is None:
            loop = asyncio.get_running_loop()
            batch = self.open = Batch(loop.create_future())
            self.timer = loop.call_later(self.linger, self._expire, batch)
        for tenant, cs in chunks.items():
            batch.chunks.setdefault(tenant, []).extend(cs)
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
        self.batches += 1
        try:
            await self.send(batch.chunks, batch.entries)
        except SendFailed as e:
            batch.acked.set_result(str(e))
            return
        except BaseException:
            if not batch.acked.done():
                batch.acked.set_result("not sent: the run was stopped")
            raise
        batch.acked.set_result("")

    async def close(self) -> None:
        """Send what is open and wait for every push."""
        batch = self.open
        if batch is not None:
            self._seal()
            await self._push(batch)
        while self.background:
            await asyncio.gather(*self.background)


async def outcome(batches: list[Batch]) -> str:
    """"" once every batch was acknowledged, else the first reason one was not."""
    for batch in batches:
        why = await batch.acked
        if why:
            return why
    return ""
