"""Entry times for a backfill: each entry keeps its own, with two adjustments.

Equal times. Loki stores one entry per (stream, time, line): a second entry with the
same time and line is dropped as a duplicate, and entries of equal time come back in no
set order. Many logs have second precision (VPC flow, CloudFront, S3 access), so a
run of entries with the same time gets +0, +1, +2 ... nanoseconds, in file order:
every line is kept and read back in the order it was written. The shift is the same
on every run, so resending an object after a crash produces the same entries, which
Loki drops as duplicates.

Old entries. Loki refuses entries older than its `reject_old_samples_max_age` (168h
by default). Policy `skip` leaves them out (counted), `receive-time` restamps them
with the run's start time (kept in the checkpoint, so a resumed run stamps the same),
`send` sends them as they are (for a Loki whose limit is off or larger than told).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from itertools import islice
from operator import eq, itemgetter

Entries = list[tuple[int, str]]

SKIP = "skip"
RECEIVE_TIME = "receive-time"
SEND = "send"
POLICIES = (SKIP, RECEIVE_TIME, SEND)

_TS = itemgetter(0)
# Entries this close to Loki's limit count as old: they could age past it before Loki sees them.
MARGIN_NS = 10 * 60 * 1_000_000_000
_SLOT = 1 << 30  # ns of restamped times per unit (about a second)


@dataclass(slots=True)
class Apart:
    """Per-stream state of `keep_apart` across the chunks of one unit."""

    last: int = -1  # the previous entry's own time
    repeat: int = 0  # how many before it had that same time


def keep_apart(entries: Entries, state: Apart) -> Entries:
    """Entries whose time equals the previous one's get one more nanosecond each."""
    if not entries:
        return entries
    ts = list(map(_TS, entries))
    if ts[0] != state.last and not any(map(eq, ts, islice(ts, 1, None))):
        state.last, state.repeat = ts[-1], 0
        return entries
    out: Entries = []
    append = out.append
    last, repeat = state.last, state.repeat
    for t, line in entries:
        if t == last:
            repeat += 1
            append((t + repeat, line))
        else:
            last, repeat = t, 0
            append((t, line))
    state.last, state.repeat = last, repeat
    return out


@dataclass(slots=True)
class OldEntries:
    """Entries older than Loki's reject_old_samples_max_age, handled by `policy`."""

    policy: str
    max_age_ns: int  # 0: Loki refuses no old entry
    started_ns: int  # the run's start (restamping base)

    def cutoff(self, now_ns: int) -> int:
        return now_ns - self.max_age_ns + MARGIN_NS if self.max_age_ns else -1

    def base(self, unit_id: str) -> int:
        """Restamped times of one unit: a slot of its own, shortly before the run's start."""
        return self.started_ns - (1 + zlib.crc32(unit_id.encode()) % 1024) * _SLOT

    def apply(self, entries: Entries, now_ns: int, restamp: list[int]) -> tuple[Entries, int]:
        """(entries to send, how many were old). `restamp` is [next restamped time] of the unit."""
        cutoff = self.cutoff(now_ns)
        if not entries or min(map(_TS, entries)) >= cutoff:
            return entries, 0
        old = sum(1 for t, _ in entries if t < cutoff)
        if self.policy == SEND:
            return entries, old
        if self.policy == SKIP:
            return [e for e in entries if e[0] >= cutoff], old
        out: Entries = []
        stamp = restamp[0]
        for t, line in entries:
            if t < cutoff:
                out.append((stamp, line))
                stamp += 1
            else:
                out.append((t, line))
        restamp[0] = stamp
        return out, old
