"""Issue 9, item 8: a failed or short WAL write never hides an acknowledged record, and the rest
of the failed batch's work (segment deletions) is still done."""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import signal
from pathlib import Path
from typing import Any

import httpx

from relay.model import Chunk
from relay.sink.wal import WalConfig, WriteAheadLog, read_segment
from tests.conftest import free_port
from tests.loki_receiver import Receiver
from tests.test_faults import Pusher, fault_config, wait_lines


def chunk(tag: str, size: int = 40) -> list[Chunk]:
    data = (tag.encode() * size)[:size]
    return [Chunk(f'{{job="{tag}"}}', data, 1, len(data))]


class FullDisk:
    """A segment file that takes `room` more bytes, then fails as a full disk does: short, then ENOSPC."""

    def __init__(self, f: Any, room: int) -> None:
        self.f = f
        self.room = room

    def write(self, buf: Any) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = self.f.write(bytes(buf)[: self.room])
        self.room -= n
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)


def test_failed_write_is_cut_back_next_records_in_a_new_segment_and_deletions_kept(tmp_path: Path) -> None:
    wal = WriteAheadLog(WalConfig(enabled=True, dir=str(tmp_path), segment_size=500, max_size=1 << 20))

    async def run() -> None:
        wal.open()
        wal.start()
        seg_a, done = wal.append({"t": chunk("a", 200)})
        await done
        seg_b, done = wal.append({"t": chunk("b", 300)})  # over segment_size: a new segment
        await done
        assert seg_b["t"] == seg_a["t"] + 1
        # In one write batch: the first segment's deletion and a record that hits a full disk.
        wal.confirm(seg_a["t"])
        wal._files[seg_b["t"]] = FullDisk(wal._files[seg_b["t"]], 25)
        seg_c, done = wal.append({"t": chunk("c")})
        try:
            await done
            raise AssertionError("the write should have failed")
        except OSError as e:
            assert e.errno == errno.ENOSPC
        wal.confirm(seg_c["t"])  # refused, so never to be delivered (what Ingest does)
        seg_d, done = wal.append({"t": chunk("d")})
        await done
        assert seg_d["t"] > seg_b["t"]  # not after the torn bytes
        await wal.close()

    asyncio.run(run())
    assert not os.path.exists(wal.path(1))  # the deletion queued with the failed write was done
    records, _, corrupt = read_segment(wal.path(2))
    assert corrupt == 0 and [c.labels for _, cs in records for c in cs] == ['{job="b"}']  # cut back
    records, _, corrupt = read_segment(wal.path(wal.active))
    assert corrupt == 0 and [c.labels for _, cs in records for c in cs] == ['{job="d"}']


def test_disk_full_then_space_freed_then_kill_9_every_acknowledged_line_replays(start_relay: Any, receiver: Receiver,
                                                                                tmp_path: Path) -> None:
    """A real relay whose WAL files may not grow past 48 KiB (RLIMIT_FSIZE: writes past it are
    short, then fail with EFBIG, as on a full disk), with Loki down; then the limit is lifted."""
    port = free_port()
    wal_dir = tmp_path / "wal"
    cfg = fault_config(receiver.url, port)
    cfg["wal"] = {"enabled": True, "dir": str(wal_dir), "segment_size": "1MiB", "max_size": "64MiB"}
    receiver.fail(503, count=None)
    relay = start_relay(cfg)
    limit = 48 << 10
    resource.prlimit(relay.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    p = Pusher(relay.url(port), "walfail")
    with httpx.Client(timeout=30) as http:
        for _ in range(200):
            p.push_one(http)
        refused = p.statuses[429]
        assert refused >= 1 and p.statuses[204] >= 50, p.statuses
        resource.prlimit(relay.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        for _ in range(60):
            assert p.push_one(http) == 204
    assert relay.metric("loki_relay_backpressure_requests_total", reason="wal_error") == refused
    relay.stop(signal.SIGKILL)
    receiver.clear_faults()
    again = start_relay(cfg)
    wait_lines(receiver, p.acked, 60)
    assert again.metric("loki_relay_wal_corrupt_bytes_total") == 0  # torn tails were cut off, not skipped
