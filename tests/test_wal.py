"""The write-ahead log on its own: framing, checksums, torn tails, segments, limits, config."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from pathlib import Path

import pytest

from relay.config import ConfigError
from relay.model import Chunk
from relay.sink.wal import (
    WalFull,
    WriteAheadLog,
    decode_payload,
    encode_record,
    read_segment,
)
from relay.sink.walconfig import WalConfig, parse_wal


def chunks(n: int, tag: str = "x") -> list[Chunk]:
    out = []
    for i in range(n):
        data = f"{tag}-{i}".encode() * 3
        out.append(Chunk(f'{{job="{tag}", i="{i}"}}', data, i + 1, len(data)))
    return out


def test_record_roundtrip() -> None:
    rec = encode_record("tenant-ä", chunks(3))
    length, _ = struct.unpack_from("<II", rec)
    assert length == len(rec) - 8
    tenant, got = decode_payload(rec[8:])
    assert tenant == "tenant-ä" and got == chunks(3)


def write_segment(path: Path, records: list[bytes]) -> None:
    path.write_bytes(b"".join(records))


@pytest.mark.parametrize("damage", ["truncated_header", "truncated_payload", "bad_crc", "garbage"])
def test_torn_or_corrupt_tail_is_skipped_earlier_records_kept(tmp_path: Path, damage: str) -> None:
    good = [encode_record("t", chunks(2, f"r{i}")) for i in range(5)]
    last = encode_record("t", chunks(2, "last"))
    if damage == "truncated_header":
        tail = last[:5]
    elif damage == "truncated_payload":
        tail = last[:-3]
    elif damage == "bad_crc":
        tail = last[:20] + bytes([last[20] ^ 0xFF]) + last[21:]
    else:
        tail = os.urandom(64)
    seg = tmp_path / "0000000000000001.wal"
    write_segment(seg, good + [tail])
    records, valid, corrupt = read_segment(str(seg))
    assert [c for _, cs in records for c in cs] == [c for i in range(5) for c in chunks(2, f"r{i}")]
    assert valid == sum(map(len, good)) and corrupt == len(tail)


def test_corruption_in_the_middle_stops_that_segment_only(tmp_path: Path) -> None:
    recs = [encode_record("t", chunks(1, f"r{i}")) for i in range(4)]
    bad = bytearray(recs[2])
    bad[-1] ^= 1
    write_segment(tmp_path / "0000000000000001.wal", [recs[0], recs[1], bytes(bad), recs[3]])
    write_segment(tmp_path / "0000000000000002.wal", [encode_record("u", chunks(1, "next"))])

    async def run() -> list[tuple[int, str]]:
        wal = WriteAheadLog(WalConfig(enabled=True, dir=str(tmp_path)))
        wal.open()
        wal.start()
        out = [(seg, t) for seg, records in [x async for x in wal.replay()] for t, _ in records]
        await wal.close()
        return out

    assert asyncio.run(run()) == [(1, "t"), (1, "t"), (2, "u")]


def test_append_durable_rotate_confirm_delete_and_replay(tmp_path: Path) -> None:
    cfg = WalConfig(enabled=True, dir=str(tmp_path), max_size=1 << 20, segment_size=4096)

    async def first() -> list[int]:
        wal = WriteAheadLog(cfg)
        wal.open()
        wal.start()
        segs = []
        for i in range(40):
            s, fut = wal.append({"a": chunks(3, f"a{i}"), "b": chunks(1, f"b{i}")})
            await fut
            segs.append((s["a"], s["b"]))
        assert len({a for a, _ in segs}) >= 3  # rotated
        # Confirm everything but request 30's tenant-b record.
        for i, (a, b) in enumerate(segs):
            wal.confirm(a)
            if i != 30:
                wal.confirm(b)
        await wal.close()
        return sorted(int(p.name[:16]) for p in tmp_path.glob("*.wal"))

    left = asyncio.run(first())
    assert len(left) == 1  # only the segment holding the unconfirmed record

    async def second() -> list[tuple[str, list[Chunk]]]:
        wal = WriteAheadLog(cfg)
        wal.open()
        wal.start()
        got = [r for _, records in [x async for x in wal.replay()] for r in records]
        await wal.close()
        return got

    got = asyncio.run(second())
    assert ("b", chunks(1, "b30")) in got


def test_full_wal_refuses_without_side_effects(tmp_path: Path) -> None:
    cfg = WalConfig(enabled=True, dir=str(tmp_path), max_size=2000, segment_size=1000)

    async def run() -> None:
        wal = WriteAheadLog(cfg)
        wal.open()
        wal.start()
        n = 0
        with pytest.raises(WalFull):
            while True:
                _, fut = wal.append({"t": chunks(2, f"r{n}")})
                await fut
                n += 1
        assert n > 5
        total = wal.total
        with pytest.raises(WalFull):
            wal.append({"t": chunks(2, "again")})
        assert wal.total == total
        await wal.close()

    asyncio.run(run())


def test_group_commit_one_fsync_for_concurrent_appends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    cfg = WalConfig(enabled=True, dir=str(tmp_path))

    async def run() -> None:
        wal = WriteAheadLog(cfg)
        wal.open()
        wal.start()
        futs = [wal.append({"t": chunks(1, f"r{i}")})[1] for i in range(100)]
        await asyncio.gather(*futs)
        await wal.close()

    asyncio.run(run())
    assert len(calls) <= 4  # file + directory, not one per request


def test_interval_sync_answers_after_write(tmp_path: Path) -> None:
    cfg = parse_wal({"enabled": True, "dir": str(tmp_path), "sync": "10s"}, "wal")
    assert cfg.sync_interval == 10

    async def run() -> None:
        wal = WriteAheadLog(cfg)
        wal.open()
        wal.start()
        _, fut = wal.append({"t": chunks(2)})
        t0 = time.monotonic()
        await fut
        assert time.monotonic() - t0 < 5  # not at the next 10 s sync
        assert read_segment(wal.path(wal.active))[0] == [("t", chunks(2))]  # written, survives kill -9
        await wal.close()

    asyncio.run(run())


def test_parse_wal() -> None:
    assert parse_wal(None, "wal").enabled is False
    c = parse_wal({"enabled": True, "dir": "/x", "max_size": "2GiB", "sync": "always"}, "wal")
    assert (c.max_size, c.sync, c.segment_size) == (2 << 30, "always", 32 << 20)
    with pytest.raises(ConfigError, match="wal.dir"):
        parse_wal({"enabled": True}, "wal")
    with pytest.raises(ConfigError, match="wal.sync"):
        parse_wal({"enabled": True, "dir": "/x", "sync": "sometimes"}, "wal")
    with pytest.raises(ConfigError, match="wal.bogus"):
        parse_wal({"bogus": 1}, "wal")
