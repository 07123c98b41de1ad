"""Timestamps as the inputs write them, to Unix nanoseconds. Plain functions, cached per
distinct date or second (log lines of one object share them), never per line."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

from .cache import BoundedCache

NS = 1_000_000_000

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_DAYS: BoundedCache[Any, int | None] = BoundedCache(4096)  # date text -> days since 1970-01-01; None: invalid
MONTHS = {m: i + 1 for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])}


def days_since_epoch(key: Any, year: int, month: int, day: int) -> int | None:
    """Days since 1970-01-01 of a date, or None when there is no such date; cached under `key`."""
    days = _DAYS.get(key, -1)
    if days != -1:
        return days
    try:
        days = dt.date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        days = None
    return _DAYS.put(key, days)


def clock_seconds(days: int | None, hh: str, mm: str, ss: str) -> int | None:
    """Seconds since the epoch, or None for an impossible time."""
    if days is None:
        return None
    h, m, s = int(hh), int(mm), int(ss)
    if h > 23 or m > 59 or s > 60:
        return None
    return days * 86400 + h * 3600 + m * 60 + s


# 2022-12-06T17:42:16.176563Z, 2018-12-20T02:59:40 (NLB: no zone, UTC), 2023-05-19T07:44:30+02:00
ISO = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9})\d*)?(Z|[+-]\d{2}:?\d{2})?")
# RFC 3339 proper: a zone is required (Loki's legacy push API, Go's time.RFC3339Nano).
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)")
_SECONDS: BoundedCache[str, int | None] = BoundedCache(65536)  # "YYYY-MM-DDTHH:MM:SS" -> unix s; None: invalid


def iso_match_ns(m: re.Match[str]) -> int | None:
    """Unix ns of a match of ISO or the RFC 3339 pattern (groups: date-time, fraction, zone)."""
    base, frac, tz = m.groups()
    secs = _SECONDS.get(base, -1)
    if secs == -1:
        days = days_since_epoch(base[:10], int(base[:4]), int(base[5:7]), int(base[8:10]))
        secs = _SECONDS.put(base, clock_seconds(days, base[11:13], base[14:16], base[17:19]))
    if secs is None:
        return None
    if tz and tz not in ("Z", "z"):
        hours, minutes = int(tz[1:3]), int(tz[-2:])
        if hours > 24 or minutes > 60:  # Go's time.Parse takes 24 and 60, and nothing beyond
            return None
        offset = hours * 3600 + minutes * 60
        secs = secs - offset if tz[0] == "+" else secs + offset
    return secs * NS + int(frac.ljust(9, "0")) if frac else secs * NS


def iso_ns(text: Any) -> int | None:
    """Unix ns of an ISO-8601 time at the start of `text` (no zone: UTC), or None. Lenient, for AWS logs."""
    if not isinstance(text, str):
        return None
    m = ISO.match(text.strip())
    return iso_match_ns(m) if m is not None else None


def rfc3339_ns(text: Any) -> int | None:
    """Unix ns of a whole RFC 3339 time with its zone, or None."""
    if not isinstance(text, str):
        return None
    m = _RFC3339.fullmatch(text.strip())
    return iso_match_ns(m) if m is not None else None


def unix_digits_ns(digits: str) -> int:
    """A unix time in seconds, ms, µs or ns, told apart by its digit count (as lambda-promtail does)."""
    if len(digits) <= 10:
        return int(digits) * NS
    return int(digits.ljust(19, "0")[:19])


class ReceiveClock:
    """Receive times for the entries of one request that have no time of their own.

    Successive stamps are 1 ns apart: Loki merges entries of the same stream, timestamp and
    line, so equal lines stamped alike would be stored once. Thread-safe (S3 objects are read
    in a worker thread while the event loop pushes what was read before)."""

    __slots__ = ("_lock", "_next")

    def __init__(self, start: int) -> None:
        self._next = start
        self._lock = threading.Lock()

    def take(self, n: int = 1) -> int:
        """The first of `n` consecutive stamps, which are the caller's alone."""
        with self._lock:
            ns = self._next
            self._next += n
        return ns


def receive_clock(receive: int | ReceiveClock) -> ReceiveClock:
    return receive if isinstance(receive, ReceiveClock) else ReceiveClock(receive)
