"""The write-ahead log: a push is answered 2xx only once its chunks are in here.

Layout: `dir/` holds segment files `0000000000000001.wal`, `...2.wal`, appended in
order. A segment is a sequence of records, each framed as

    u32 little-endian payload length | u32 crc32(payload) | payload

and a payload is one request's chunks for one tenant:

    u16 tenant length | tenant | u32 chunk count | per chunk:
        u32 labels length | u32 entry count | u32 data length | labels | data

A record whose length runs past the end of the file, or whose checksum does not
match, ends the readable part of that segment: a torn write (kill -9, power loss
mid-write) only ever loses that tail, never an earlier record.

Each record is confirmed once every client has settled its chunks (see
`Fanout`); a segment is deleted when it is no longer being written and all its
records are confirmed. On start, every remaining segment is replayed to every
client: records some client had already delivered are sent again, byte for byte
the same (same stream, timestamp, line), which Loki deduplicates.

All file I/O runs in a worker thread, one batch of writes at a time: requests that
arrive while a write+fsync is running are written and fsynced together by the next
one (group commit).

`sync: always` (default): fsync before answering, so an acknowledged push survives
a crash of the machine. `sync: <duration>`: answer once the write() is done (in the
OS page cache, so it survives kill -9 of the relay) and fsync every <duration>: a
power loss or kernel crash can lose the acknowledged pushes of the last <duration>,
in exchange for much less disk latency per request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from .. import metrics
from ..model import Chunk
from .walconfig import WalConfig

log = logging.getLogger("relay.wal")

_HEAD = struct.Struct("<II")  # payload length, crc32
_TENANT = struct.Struct("<H")
_COUNT = struct.Struct("<I")
_CHUNK = struct.Struct("<III")  # labels length, entries, data length
SUFFIX = ".wal"

m_bytes = Gauge("loki_relay_wal_bytes", "Bytes in write-ahead-log segments.", registry=metrics.REGISTRY)
m_segments = Gauge("loki_relay_wal_segments", "Write-ahead-log segment files.", registry=metrics.REGISTRY)
m_records = Counter("loki_relay_wal_records_total", "Records written to the write-ahead log.", registry=metrics.REGISTRY)
m_replayed = Counter(
    "loki_relay_wal_replayed_entries_total", "Entries replayed from the write-ahead log at start.", registry=metrics.REGISTRY
)
m_corrupt = Counter(
    "loki_relay_wal_corrupt_bytes_total",
    "Bytes at the end of a segment skipped at replay because of a torn or corrupt record.",
    registry=metrics.REGISTRY,
)
m_full = Counter(
    "loki_relay_wal_full_total", "Pushes refused because the write-ahead log was at max_size.", registry=metrics.REGISTRY
)
m_flush = Histogram(
    "loki_relay_wal_flush_seconds",
    "Time of one group write (and fsync) of the write-ahead log.",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
    registry=metrics.REGISTRY,
)


class WalFull(Exception):
    pass


def encode_record(tenant: str, chunks: list[Chunk]) -> bytes:
    t = tenant.encode()
    parts = [b"", _TENANT.pack(len(t)), t, _COUNT.pack(len(chunks))]
    for c in chunks:
        lb = c.labels.encode()
        parts += (_CHUNK.pack(len(lb), c.count, c.size), lb, c.data)
    payload = b"".join(parts)
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def decode_payload(p: bytes) -> tuple[str, list[Chunk]]:
    (tl,) = _TENANT.unpack_from(p, 0)
    pos = _TENANT.size
    tenant = p[pos:pos + tl].decode()
    pos += tl
    (n,) = _COUNT.unpack_from(p, pos)
    pos += _COUNT.size
    chunks = []
    for _ in range(n):
        ll, count, dl = _CHUNK.unpack_from(p, pos)
        pos += _CHUNK.size
        labels = p[pos:pos + ll].decode()
        pos += ll
        data = p[pos:pos + dl]
        pos += dl
        if len(data) != dl:
            raise ValueError("chunk past the end of its record")
        chunks.append(Chunk(labels, data, count, dl))
    if pos != len(p):
        raise ValueError("trailing bytes in record")
    return tenant, chunks


def read_segment(path: str) -> tuple[list[tuple[str, list[Chunk]]], int, int]:
    """(records, valid bytes, corrupt bytes skipped at the end)."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    pos = 0
    end = len(data)
    while pos + _HEAD.size <= end:
        length, crc = _HEAD.unpack_from(data, pos)
        start = pos + _HEAD.size
        if start + length > end:
            break
        payload = data[start:start + length]
        if zlib.crc32(payload) != crc:
            break
        try:
            out.append(decode_payload(payload))
        except (ValueError, struct.error, UnicodeDecodeError):
            break
        pos = start + length
    return out, pos, end - pos


def segment_name(seg: int) -> str:
    return f"{seg:016d}{SUFFIX}"


class WriteAheadLog:
    def __init__(self, cfg: WalConfig) -> None:
        self.cfg = cfg
        self.dir = cfg.dir
        self.always = cfg.sync == "always"
        self._sizes: dict[int, int] = {}  # segment -> bytes (written or queued)
        self._pending: dict[int, int] = {}  # segment -> records not yet confirmed
        self.total = 0
        self.active = 0
        # Work for the writer thread, in order: ("w", segment, bytes) or ("d", segment).
        self._ops: list[tuple[str, int, bytes]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._files: dict[int, Any] = {}  # only touched by the writer (one batch at a time)
        self._dirty: set[int] = set()
        self._broken: set[int] = set()  # segments a write or fsync failed on: never written again
        self._dir_dirty = False  # a segment file was created since the directory was last fsynced
        self._kick: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.replay_segments: list[int] = []

    # -- start ---------------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory and find the segments to replay (synchronous: at start-up)."""
        os.makedirs(self.dir, exist_ok=True)
        segs = []
        for name in os.listdir(self.dir):
            if name.endswith(SUFFIX) and name[: -len(SUFFIX)].isdigit():
                segs.append(int(name[: -len(SUFFIX)]))
            elif name.endswith(SUFFIX + ".tmp"):
                os.unlink(os.path.join(self.dir, name))
        segs.sort()
        for s in segs:
            size = os.path.getsize(self.path(s))
            self._sizes[s] = size
            self._pending[s] = 0
            self.total += size
        self.replay_segments = segs
        self.active = (segs[-1] if segs else 0) + 1
        self._sizes[self.active] = 0
        self._pending[self.active] = 0
        m_bytes.set(self.total)
        m_segments.set(len(self._sizes))

    def start(self) -> None:
        self._kick = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._writer(), name="wal writer")

    def path(self, seg: int) -> str:
        return os.path.join(self.dir, segment_name(seg))

    async def replay(self) -> AsyncIterator[tuple[int, list[tuple[str, list[Chunk]]]]]:
        """Yields (segment, records) for each segment left from before, oldest first."""
        for seg in self.replay_segments:
            try:
                records, _, corrupt = await asyncio.to_thread(read_segment, self.path(seg))
            except OSError as e:
                log.error("wal: cannot read segment %s: %s", self.path(seg), e)
                records, corrupt = [], 0
            if corrupt:
                m_corrupt.inc(corrupt)
                log.warning("wal: segment %s: skipped %d bytes of torn or corrupt tail after %d good records",
                            segment_name(seg), corrupt, len(records))
            self._pending[seg] = len(records)
            entries = sum(c.count for _, chunks in records for c in chunks)
            m_replayed.inc(entries)
            log.info("wal: replaying segment %s: %d records, %d entries", segment_name(seg), len(records), entries)
            if not records:
                self._retire(seg)
                continue
            yield seg, records

    # -- the request path -------------------------------------------------------------------

    def append(self, by_tenant: dict[str, list[Chunk]]) -> tuple[dict[str, int], asyncio.Future[None]]:
        """Queue one record per tenant; returns their segments and a future done when durable.

        Raises WalFull (nothing queued) when the records would take the log over max_size.
        """
        frames = [(t, encode_record(t, chunks)) for t, chunks in by_tenant.items()]
        size = sum(len(f) for _, f in frames)
        if self.total + size > self.cfg.max_size and self.total > 0:
            m_full.inc()
            raise WalFull(f"write-ahead log full ({self.total} of {self.cfg.max_size} bytes)")
        segments: dict[str, int] = {}
        for tenant, frame in frames:
            if self._sizes[self.active] and self._sizes[self.active] + len(frame) > self.cfg.segment_size:
                self._rotate()
            seg = self.active
            self._sizes[seg] += len(frame)
            self._pending[seg] += 1
            self._ops.append(("w", seg, frame))
            segments[tenant] = seg
        self.total += size
        m_records.inc(len(frames))
        m_bytes.set(self.total)
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        assert self._kick is not None
        self._kick.set()
        return segments, fut

    def confirm(self, seg: int) -> None:
        """Every client has settled one record of `seg`."""
        left = self._pending[seg] = self._pending[seg] - 1
        if left == 0 and seg != self.active:
            self._retire(seg)

    def _rotate(self) -> None:
        old = self.active
        self.active += 1
        self._sizes[self.active] = 0
        self._pending[self.active] = 0
        m_segments.set(len(self._sizes))
        if self._pending[old] == 0:
            self._retire(old)

    def _retire(self, seg: int) -> None:
        self.total -= self._sizes.pop(seg)
        del self._pending[seg]
        self._ops.append(("d", seg, b""))
        m_bytes.set(self.total)
        m_segments.set(len(self._sizes))
        if self._kick is not None:
            self._kick.set()

    # -- the writer ---------------------------------------------------------------------------

    async def _writer(self) -> None:
        assert self._kick is not None
        interval = None if self.always else self.cfg.sync_interval
        next_sync = time.monotonic() + (interval or 0)
        while True:
            if not self._ops:
                if self._closing:
                    break
                self._kick.clear()
                try:
                    await asyncio.wait_for(self._kick.wait(), interval)
                except TimeoutError:
                    pass
            ops, waiters = self._ops, self._waiters
            self._ops, self._waiters = [], []
            sync = self.always or time.monotonic() >= next_sync or self._closing
            if sync and interval:
                next_sync = time.monotonic() + interval
            if not ops and not (sync and self._dirty):
                continue
            start = time.perf_counter()
            error = await asyncio.to_thread(self._do, ops, sync)
            if error is not None:
                log.error("wal: write failed, the requests of this write are refused: %s", error)
                if self.active in self._broken:
                    # Nothing more goes after a failed write: later records start a new segment.
                    self._rotate()
                for w in waiters:
                    if not w.done():
                        w.set_exception(error)
                continue
            m_flush.observe(time.perf_counter() - start)
            for w in waiters:
                if not w.done():
                    w.set_result(None)
        await asyncio.to_thread(self._close_files)

    def _do(self, ops: list[tuple[str, int, bytes]], sync: bool) -> OSError | None:
        """In the worker thread: writes (coalesced per segment), deletions, then fsync.

        Returns the first error. After a failed or short write the segment is cut back to its
        last whole record and never written again (`_broken`), so no acknowledged record ever
        sits behind torn bytes; the rest of the batch's writes are skipped (their requests are
        refused), but its deletions are still done.
        """
        error: OSError | None = None
        i = 0
        while i < len(ops):
            kind, seg, data = ops[i]
            i += 1
            if kind == "d":
                try:
                    self._delete(seg)
                except OSError as e:
                    log.error("wal: cannot delete segment %s: %s", segment_name(seg), e)
                continue
            parts = [data]
            while i < len(ops) and ops[i][0] == "w" and ops[i][1] == seg:
                parts.append(ops[i][2])
                i += 1
            if error is not None:
                continue
            if seg in self._broken:
                error = OSError(f"segment {segment_name(seg)} is closed after a failed write")
                continue
            try:
                self._write(seg, b"".join(parts))
            except OSError as e:
                error = e
        if sync:
            for seg in list(self._dirty):
                try:
                    os.fsync(self._files[seg].fileno())
                except OSError as e:
                    error = error or e
                    self._give_up(seg)  # what reached the disk is unknown: write no more there
            self._dirty.clear()
            if self._dir_dirty:
                self._dir_dirty = False
                try:
                    fd = os.open(self.dir, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                except OSError as e:
                    error = error or e
        return error

    def _write(self, seg: int, buf: bytes) -> None:
        f = self._files.get(seg)
        if f is None:
            f = self._files[seg] = open(self.path(seg), "ab", buffering=0)  # noqa: SIM115
            self._dir_dirty = True
            # Only the segment being written stays open.
            for other in [s for s in self._files if s < seg]:
                if other in self._dirty:
                    os.fsync(self._files[other].fileno())
                    self._dirty.discard(other)
                self._files.pop(other).close()
        good = f.tell()  # the end of the last whole record
        try:
            n = f.write(buf)
            while n < len(buf):  # a raw write may be partial; the next one then raises (ENOSPC ...)
                n += f.write(memoryview(buf)[n:])
        except OSError:
            try:  # cut the torn bytes off, so a replay reads every earlier record and stops cleanly
                os.ftruncate(f.fileno(), good)
                os.fsync(f.fileno())
            except OSError as e:
                log.error("wal: cannot cut segment %s back to %d bytes: %s", segment_name(seg), good, e)
            self._give_up(seg)
            raise
        self._dirty.add(seg)

    def _give_up(self, seg: int) -> None:
        self._broken.add(seg)
        self._dirty.discard(seg)
        f = self._files.pop(seg, None)
        if f is not None:
            try:
                f.close()
            except OSError:
                pass

    def _delete(self, seg: int) -> None:
        f = self._files.pop(seg, None)
        if f is not None:
            f.close()
        self._dirty.discard(seg)
        self._broken.discard(seg)
        try:
            os.unlink(self.path(seg))
        except FileNotFoundError:
            pass

    def _close_files(self) -> None:
        for seg, f in self._files.items():
            if seg in self._dirty:
                os.fsync(f.fileno())
            f.close()
        self._files.clear()
        self._dirty.clear()
        # A fully confirmed last segment is not needed on the next start.
        if self._pending.get(self.active) == 0 and os.path.exists(self.path(self.active)):
            os.unlink(self.path(self.active))

    async def close(self) -> None:
        """Finish queued writes and deletions, fsync, close. Unconfirmed records stay for replay."""
        self._closing = True
        if self._kick is not None:
            self._kick.set()
        if self._task is not None:
            await self._task
