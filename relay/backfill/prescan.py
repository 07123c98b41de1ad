"""Before the first push: count exactly the entries older than Loki's reject_old_samples_max_age.

Only a unit whose entries may start before the limit is read: an S3 object whose key
date (else LastModified) is less than SCAN_MARGIN after it, a typed object with no date in
its key, a CloudWatch window that starts before it. They are read and parsed as the send
does (equal times kept apart), without sending. A unit with nothing left to send (all its
entries old and the policy `skip`, or no entries) is done there and then: it is not read
a second time. The others are read again by the send, so the cost of the exact count is
one extra read of the objects near the limit and, with `receive-time` or `send`, of the
old ones.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .deps import Labels
from .stamps import Entries
from .unit import Unit, read_all

_HOUR_NS = 3600 * 1_000_000_000
# How long before its key date an object's entries may start: a day folder's objects span the
# day, and delivery lags (CloudTrail's can reach hours) come on top.
SCAN_MARGIN_NS = 48 * _HOUR_NS


@dataclass(slots=True)
class Scanned:
    unit: Unit
    entries: int = 0
    old: int = 0
    bytes: int = 0
    error: str = ""  # unreadable: left to the send, which reports it


def count_old(unit: Unit, cutoff_ns: int) -> Scanned:
    """Read a unit and count its entries older than cutoff_ns. Blocking."""
    out = Scanned(unit)

    def each(_labels: Labels, entries: Entries) -> None:
        out.entries += len(entries)
        out.old += sum(1 for t, _ in entries if t < cutoff_ns)

    try:
        out.bytes = read_all(unit, each)
    except Exception as e:
        out.error = f"{type(e).__name__}: {e}"
    return out


async def scan(units: list[Unit], cutoff_ns: int, concurrency: int) -> list[Scanned]:
    """count_old of every unit, `concurrency` at a time, in worker threads."""
    sem = asyncio.Semaphore(concurrency)

    async def one(unit: Unit) -> Scanned:
        async with sem:
            return await asyncio.to_thread(count_old, unit, cutoff_ns)

    return list(await asyncio.gather(*(one(u) for u in units)))
