"""Entry limits from `limits_config`, applied the way Loki would judge them."""

from __future__ import annotations

import datetime as dt
from itertools import chain
from operator import itemgetter
from typing import Any

from google.protobuf.message import DecodeError

from ..config import LimitsConfig
from ..model import Chunk
from ..proto import StreamAdapter, StreamTimes, seconds_bounds

TOO_OLD = "too_old"
TOO_FAR_IN_FUTURE = "too_far_in_future"
_NS = 1_000_000_000
_DATA = itemgetter(1)


class LineLimit:
    """max_line_size: lines longer than the limit are dropped, or truncated when asked."""

    def __init__(self, max_bytes: int, truncate: bool) -> None:
        self.max_bytes = max_bytes
        self.truncate = truncate

    def apply(self, msg: Any, out: Any) -> None:
        limit = self.max_bytes
        # Python's len() counts characters; a line can only exceed `limit` bytes if it has
        # more than limit/4 characters, so most lines are cleared without encoding.
        long = [i for i, e in enumerate(msg.entries) if len(e.line) * 4 > limit and len(e.line.encode()) > limit]
        if not long:
            return
        if self.truncate:
            for i in long:
                e = msg.entries[i]
                cut = e.line.encode()[:limit].decode("utf-8", "ignore")
                e.line = cut
            out.truncated += len(long)
            return
        for i in reversed(long):
            out.dropped["line_too_long"] += 1
            out.dropped_bytes["line_too_long"] += msg.entries[i].ByteSize()
            del msg.entries[i]


class TimeWindow:
    """reject_old_samples_max_age and creation_grace_period: entries Loki would refuse for their time.

    Such entries are dropped (reasons too_old, too_far_in_future) and the sender is told, in
    Loki's words, which stream had them; the other entries go on. The check reads the encoded
    chunks of a whole request at once: one parse of their bytes as `StreamTimes` lists every
    entry's seconds, and min/max over them clears the common case without a Python step per
    entry. Only a request that fails that (an entry out of range, near a bound, or at second 0)
    is looked at entry by entry, chunk by chunk.
    """

    def __init__(self, max_age_ns: int, grace_ns: int) -> None:
        self.max_age_ns = max_age_ns  # 0: no age limit
        self.grace_ns = grace_ns  # 0: no limit into the future

    @classmethod
    def from_limits(cls, limits: LimitsConfig) -> TimeWindow | None:
        """The window limits_config asks for; None when both checks are off."""
        max_age = limits.reject_old_samples_max_age if limits.reject_old_samples else 0.0
        max_age_ns, grace_ns = round(max_age * _NS), round(limits.creation_grace_period * _NS)
        return cls(max_age_ns, grace_ns) if max_age_ns or grace_ns else None

    def inside(self, times: tuple[int, int], now_ns: int) -> bool:
        """Whether every time between `times` (earliest, latest; Unix ns) is inside the window."""
        return (not self.max_age_ns or times[0] >= now_ns - self.max_age_ns) and \
            (not self.grace_ns or times[1] <= now_ns + self.grace_ns)

    def enforce(self, out: Any, now_ns: int) -> None:
        """Drop the entries of `out.chunks` (an Outcome) outside the window around `now_ns`."""
        chunks: dict[str, list[Chunk]] = out.chunks
        if not chunks:
            return
        oldest = now_ns - self.max_age_ns if self.max_age_ns else None
        newest = now_ns + self.grace_ns if self.grace_ns else None
        groups = list(chunks.values())
        every = groups[0] if len(groups) == 1 else list(chain.from_iterable(groups))
        # out.entries counts the entries of its chunks: a count that differs only means a closer look.
        if self._clear(b"".join(map(_DATA, every)), out.entries, now_ns):
            return
        for tenant in list(chunks):
            kept = []
            for chunk in chunks[tenant]:
                if self._clear(chunk.data, chunk.count, now_ns):
                    kept.append(chunk)
                    continue
                cut = _cut(chunk, oldest, newest, out)
                if cut is not None:
                    kept.append(cut)
            if kept:
                chunks[tenant] = kept
            else:
                del chunks[tenant]

    def _clear(self, data: bytes, count: int, now_ns: int) -> bool:
        """True when every one of the `count` entries encoded in `data` is surely inside the window."""
        if not count:
            return True
        try:
            seconds = StreamTimes.FromString(data).entries.timestamp.seconds
        except DecodeError:  # an unknown field the view reads as packed seconds: look closer
            return False
        # Only seconds were read: an entry is surely in range if its whole second is. No bounds (an
        # entry at second 0 or without a time): look closer.
        bounds = seconds_bounds(seconds, count)
        return bounds is not None and self.inside(bounds, now_ns)


def _cut(chunk: Chunk, oldest: int | None, newest: int | None, out: Any) -> Chunk | None:
    """The chunk without its entries outside the window (counted and reported in `out`)."""
    msg = StreamAdapter.FromString(chunk.data)
    keep = StreamAdapter()
    found: dict[str, list[int]] = {}  # reason -> [entries, bytes, first entry's time]
    for e in msg.entries:
        t = e.timestamp
        ns = t.seconds * _NS + t.nanos
        if oldest is not None and ns < oldest:
            reason = TOO_OLD
        elif newest is not None and ns > newest:
            reason = TOO_FAR_IN_FUTURE
        else:
            keep.entries.append(e)
            continue
        got = found.get(reason)
        if got is None:
            got = found[reason] = [0, 0, ns]
        got[0] += 1
        got[1] += e.ByteSize()
    if not found:
        return chunk  # near a bound, but inside
    for reason, (n, size, first) in found.items():
        out.dropped[reason] += n
        out.dropped_bytes[reason] += size
        # Loki's own messages (its distributor's validator), the count ours.
        if reason == TOO_OLD:
            text = (f"entry for stream '{chunk.labels}' has timestamp too old: {go_rfc3339(first)}, "
                    f"oldest acceptable timestamp is: {go_rfc3339(oldest or 0)}")
        else:
            text = f"entry for stream '{chunk.labels}' has timestamp too new: {go_rfc3339(first)}"
        out.errors.append(text if n == 1 else f"{text} ({n} entries)")
    n = len(keep.entries)
    out.entries -= chunk.count - n
    out.size -= chunk.size
    if not n:
        return None
    data = keep.SerializeToString()
    out.size += len(data)
    return Chunk(chunk.labels, data, n, len(data))


def go_rfc3339(ns: int) -> str:
    """Unix nanoseconds as Go's time.RFC3339 prints them in UTC (whole seconds, "Z")."""
    try:
        d = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=ns // _NS)
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"
    except OverflowError:
        return f"{ns} ns after the Unix epoch"
