"""Counters of a backfill, shown as a progress bar on a terminal or as periodic log lines."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

log = logging.getLogger("relay.backfill")


@dataclass(slots=True)
class Counts:
    units_total: int = 0  # selected and not done before
    listing_done: bool = False
    size_total: int = 0  # stored bytes of the selected units (S3 object sizes), for the ETA
    units_done: int = 0
    size_done: int = 0
    lines: int = 0  # entries sent (or, dry-run, that would be)
    bytes: int = 0  # bytes of lines read, decompressed
    old: int = 0  # entries older than Loki's reject_old_samples_max_age
    skipped_old: int = 0
    dropped: int = 0  # dropped by the job's rules (relabel drop, limits)
    undated: int = 0  # selected objects whose key has no date
    resumed: int = 0  # units already done by an earlier run
    scanned_only: int = 0  # units read to count old entries, with nothing to send (done then)
    batches: int = 0  # pushes acknowledged
    failed: dict[str, str] = field(default_factory=dict)  # unit -> why
    by_type: dict[str, int] = field(default_factory=dict)  # S3 log type -> objects


def human(n: float, unit: str = "") -> str:
    for suffix in ("", "k", "M", "G", "T"):
        if abs(n) < 1000 or suffix == "T":
            return f"{n:.0f}{suffix}{unit}" if suffix == "" else f"{n:.1f}{suffix}{unit}"
        n /= 1000
    return f"{n}{unit}"  # pragma: no cover


def clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
    def __init__(self, counts: Counts, out: TextIO = sys.stderr, tty: bool | None = None,
                 interval: float = 10.0) -> None:
        self.c = counts
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.interval = 0.25 if self.tty else interval
        self.started = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def line(self) -> str:
        c = self.c
        elapsed = max(time.monotonic() - self.started, 1e-6)
        total = str(c.units_total) if c.listing_done else f"{c.units_total}+"
        text = (f"objects {c.units_done}/{total}  lines {human(c.lines)}  bytes {human(c.bytes, 'B')}  "
                f"{human(c.lines / elapsed)} lines/s {human(c.bytes / elapsed, 'B')}/s")
        if c.failed:
            text += f"  failed {len(c.failed)}"
        eta = self.eta(elapsed)
        text += f"  ETA {clock(eta)}" if eta is not None else "  ETA ?"
        return text

    def eta(self, elapsed: float) -> float | None:
        c = self.c
        if not c.listing_done or not c.units_done:
            return None
        if c.size_total and c.size_done:
            return elapsed * (c.size_total - c.size_done) / c.size_done
        return elapsed * (c.units_total - c.units_done) / c.units_done

    def show(self) -> None:
        if self.tty:
            self.out.write("\r\x1b[K" + self.line())
            self.out.flush()
        else:
            log.info("backfill progress: %s", self.line())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.show()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.show()
        if self.tty:
            self.out.write("\n")
            self.out.flush()
