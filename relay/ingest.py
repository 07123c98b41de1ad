"""Where a listener hands its decoded streams: processing, accounting, then the sinks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from prometheus_client import Counter

from . import metrics
from .config import JobConfig
from .connections import body_room
from .model import Stream, held_size
from .pipeline import Outcome, Processor
from .sink.fanout import Fanout, Ticket
from .sink.wal import WalFull

log = logging.getLogger("relay.ingest")

# A request of more streams or entries than this is processed in slices of about this size,
# the event loop serving others between them (a push of a million tiny streams would
# otherwise hold every listener of the process for seconds).
SLICE_STREAMS = 2_000
SLICE_ENTRIES = 50_000

refused_requests = Counter(
    "loki_relay_backpressure_requests_total",
    "Requests refused (429/503, the sender retries) because a buffer limit or the full WAL was reached, by reason.",
    ["job", "reason"],
    registry=metrics.REGISTRY,
)
refused_entries = Counter(
    "loki_relay_backpressure_entries_total",
    "Entries in requests refused with backpressure (not dropped: the sender keeps and retries them).",
    ["job", "reason"],
    registry=metrics.REGISTRY,
)


# Drops that mean something is wrong with what a sender sent (or the relay could not keep it):
# logged as warnings. Others (relabel drop, a stage's drop) are what the config asked for: info.
PROBLEMS = frozenset({"invalid", "no_labels", "too_old", "too_far_in_future", "line_too_long", "backpressure"})
_WITH_ERRORS = frozenset({"invalid", "too_old", "too_far_in_future"})  # the sender got a message for these


class DropLog:
    """Logs intake drops with their job and reason: at most one line per (job, reason) every
    `every` seconds, which also tells how much was dropped unlogged since the line before."""

    def __init__(self, every: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._next: dict[tuple[str, str], float] = {}  # when (job, reason) may log again
        self._held: dict[tuple[str, str], tuple[int, int]] = {}  # (entries, drops) not logged since

    def drop(self, job: str, reason: str, entries: int, detail: str = "") -> None:
        key = (job, reason)
        now = self.clock()
        next_at = self._next.get(key)
        if next_at is not None and now < next_at:
            held, times = self._held.get(key, (0, 0))
            self._held[key] = (held + entries, times + 1)
            return
        self._next[key] = now + self.every
        held, times = self._held.pop(key, (0, 0))
        more = f" (and {held} more entries in {times} drops not logged since the last such line)" if times else ""
        log.log(logging.WARNING if reason in PROBLEMS else logging.INFO, "job %s: %d entries dropped, reason %s%s%s",
                job, entries, reason, f": {detail[:500]}" if detail else "", more)


drop_log = DropLog()


class Backpressure(Exception):
    """The relay cannot take more now; the sender should retry later."""

    def __init__(self, reason: str, retry_after: float = 1.0) -> None:
        super().__init__(reason)
        self.retry_after = retry_after

    @property
    def retry_after_header(self) -> str:
        """Retry-After in whole seconds, at least 1."""
        return str(max(1, round(self.retry_after)))


class Ingest:
    def __init__(self, job: JobConfig, processor: Processor, sink: Fanout) -> None:
        self.job = job
        self.processor = processor
        self.sink = sink
        self.wait = processor.limits.backpressure_wait
        self._m_entries = metrics.received_entries.labels(job.name)
        self._m_bytes = metrics.received_bytes.labels(job.name)
        self.drop_log = drop_log

    def _refuse(self, reason: str, entries: int, retry_after: float = 1.0) -> Backpressure:
        refused_requests.labels(self.job.name, reason).inc()
        refused_entries.labels(self.job.name, reason).inc(entries)
        return Backpressure(f"too much buffered, retry later ({reason})", retry_after)

    async def check(self, tenant: str, size: int = 0) -> Ticket:
        """Before reading a request: wait (limits_config.backpressure_wait) for room for about
        `size` bytes, or raise Backpressure. The ticket then reserves the body's bytes as they
        are read (relay.connections.metered). Pass it to `push`, and release it when the
        request ends (push does, too)."""
        got = await self.sink.room(tenant, size, self.wait)
        if isinstance(got, str):
            raise self._refuse(got, 0)
        body_room.set(got)
        return got

    async def push(self, streams: Sequence[Stream], tenant: str, receive_ns: int,
                   ticket: Ticket | None = None, times: tuple[int, int] | None = None) -> Outcome:
        """Process and queue streams; returns what was accepted and dropped. `times`: the earliest
        and latest entry time of `streams` when the source knows them (Processor.process).

        Raises Backpressure, having taken nothing, when the relay holds too much
        (limits_config.max_buffered_bytes, max_buffered_bytes_per_tenant) or the WAL is
        full. With the WAL on, returns only once the accepted chunks are in the log.
        """
        try:
            return await self._push(streams, tenant, receive_ns, ticket, times)
        finally:
            if ticket is not None:
                ticket.release()

    async def _push(self, streams: Sequence[Stream], tenant: str, receive_ns: int, ticket: Ticket | None,
                    times: tuple[int, int] | None) -> Outcome:
        sink = self.sink
        if ticket is None:
            full = sink.full(tenant)
            if full:  # before spending any work on the request
                raise self._refuse(full, sum(len(s.entries.entries) for s in streams))
        out = await self._process(streams, tenant, receive_ns, times)
        # Counted from what processing saw anyway: no second pass over the streams.
        received = out.entries + sum(out.dropped.values()) if out.received is None else out.received
        self._m_entries.inc(received)
        self._m_bytes.inc(out.size + sum(out.dropped_bytes.values()))
        if out.hold > 0:  # a limit stage without drop: slow the sender down, as Promtail blocks
            await asyncio.sleep(out.hold)
        await self._queue(out, ticket, received)
        return out

    async def _process(self, streams: Sequence[Stream], tenant: str, receive_ns: int,
                       times: tuple[int, int] | None) -> Outcome:
        """The processor's outcome for all `streams`, yielding to the event loop between slices."""
        process = self.processor.process
        if len(streams) <= SLICE_STREAMS:
            return process(streams, tenant, receive_ns, times)
        total: Outcome | None = None
        start = 0
        while start < len(streams):
            end = start
            entries = 0
            while end < len(streams) and end - start < SLICE_STREAMS and entries < SLICE_ENTRIES:
                entries += len(streams[end].entries.entries)
                end += 1
            part = process(streams[start:end], tenant, receive_ns, times)  # the request's bounds hold for a slice
            receive_ns += entries  # receive-time stamps stay distinct across slices
            total = part if total is None else _merge(total, part)
            start = end
            if start < len(streams):
                await asyncio.sleep(0)
        assert total is not None
        return total

    async def flush(self, final: bool = False) -> None:
        """Send what pipeline stages held back and now give up (multiline): on their timer, and
        with `final` at shutdown. Waits for room like a push; refused, the entries are counted."""
        out = self.processor.flush(final)
        try:
            await self._queue(out, None, out.entries, wait=True)
        except Backpressure as e:
            log.error("job %s: %d held-back entries dropped: %s", self.job.name, out.entries, e)
            out.dropped["backpressure"] += out.entries
            out.dropped_bytes["backpressure"] += out.size
            self._count_drops(out)

    async def _queue(self, out: Outcome, ticket: Ticket | None, received: int, wait: bool = False) -> None:
        """Hand the outcome's chunks to the sinks (and the WAL); counts the outcome's drops."""
        sink = self.sink
        if out.chunks:
            sizes = {t: held_size(chunks) for t, chunks in out.chunks.items()}
            full = sink.admit(sizes, ticket)
            if full and (ticket is not None or wait):
                # Admitted before reading but bigger than estimated (or held back by a stage): the
                # work is done, so wait for room rather than make the sender do it all again.
                loop = asyncio.get_running_loop()
                deadline = loop.time() + self.wait
                while full and loop.time() < deadline:
                    await sink.freed(deadline - loop.time())
                    full = sink.admit(sizes, ticket)
            if full:
                raise self._refuse(full, received)
            if ticket is not None:
                ticket.release()  # the request's real size is reserved now
            try:
                segments = None
                wal = sink.wal
                if wal is not None:
                    try:
                        segments, durable = wal.append(out.chunks)
                    except WalFull:
                        raise self._refuse("wal_full", received) from None
                    try:
                        await durable
                    except BaseException as e:
                        # Not acknowledged, so not to be delivered: the records need no confirmation.
                        for seg in segments.values():
                            wal.confirm(seg)
                        if isinstance(e, OSError):
                            log.error("wal write failed, refusing the push: %s", e)
                            raise self._refuse("wal_error", received) from None
                        raise
                sink.add(out.chunks, segments)
            finally:
                sink.unreserve(sizes)
        self._count_drops(out)
        if out.truncated:
            metrics.truncated_entries.labels(self.job.name).inc(out.truncated)

    def _count_drops(self, out: Outcome) -> None:
        job = self.job.name
        for reason, n in out.dropped.items():
            metrics.count_drop(reason, n, out.dropped_bytes[reason], job=job)
            detail = f"first error of the request: {out.errors[0]}" if out.errors and reason in _WITH_ERRORS else ""
            self.drop_log.drop(job, reason, n, detail)

    def count_invalid(self, entries: int, size: int, detail: str = "") -> None:
        """Entries a source could not decode (bad labels, bad timestamps ...); `detail`: why."""
        metrics.count_drop("invalid", entries, size, job=self.job.name)
        self.drop_log.drop(self.job.name, "invalid", entries, detail)


def _merge(a: Outcome, b: Outcome) -> Outcome:
    """One outcome of two slices of a request (`a` updated in place)."""
    received = (a.entries + sum(a.dropped.values()) if a.received is None else a.received) + (
        b.entries + sum(b.dropped.values()) if b.received is None else b.received)
    for tenant, chunks in b.chunks.items():
        a.chunks.setdefault(tenant, []).extend(chunks)
    a.entries += b.entries
    a.size += b.size
    a.dropped.update(b.dropped)
    a.dropped_bytes.update(b.dropped_bytes)
    a.errors.extend(b.errors)
    a.truncated += b.truncated
    a.received = received
    a.hold += b.hold
    return a
