"""`timestamp`: set the entry's timestamp from an extracted value.

Formats are Promtail's: its named Go layouts (parsed as Go's time.Parse does, ignoring `location`), `Unix`,
`UnixMs`, `UnixUs`, `UnixNs`, or a Go layout (read in `location` when given). A layout without a year
gets the current year, the previous one for a December time read in January and the next one for a
January time read in December. On failure, `fudge` (the default) gives the last timestamp this stage set
for the same label set plus 1ns (nothing if it never set one), `skip` keeps the timestamp.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..gotime import NAMED, GoTimeError, Layout
from ..values import to_string
from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block

PROMTAIL_NAMED = ("ANSIC", "UnixDate", "RubyDate", "RFC822", "RFC822Z", "RFC850", "RFC1123", "RFC1123Z",
                  "RFC3339", "RFC3339Nano")
ACTIONS = ["skip", "fudge"]
LAST_KNOWN_SIZE = 10_000
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

_INT = re.compile(r"[+-]?[0-9]+")

Parser = Callable[[str], int]
_MISSING = object()
_LABELS = attrgetter("labels")


def _int64(text: str) -> int:
    if _INT.fullmatch(text) is None:
        raise ValueError(f"invalid syntax: {text!r}")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"value out of range: {text!r}")
    return value


def _unix(text: str) -> int:
    if text.count(".") == 1:
        sec_text, frac_text = text.split(".")
        sec, frac = _int64(sec_text), _int64(frac_text)
        # Go scales through a float64, so 10+ fraction digits lose precision the same way.
        nsec = int(float(frac) * math.pow(10, 9 - len(frac_text)))
        return sec * 1_000_000_000 + nsec
    return _int64(text) * 1_000_000_000


def _year_near_now(month: int) -> int:
    now = time.gmtime()
    if month == 12 and now.tm_mon == 1:
        return now.tm_year - 1
    if month == 1 and now.tm_mon == 12:
        return now.tm_year + 1
    return now.tm_year


def compile_format(fmt: str, location: ZoneInfo | None) -> Parser:
    """Promtail's convertDateLayout: a format name or Go layout as a function text -> unix ns."""
    if fmt in PROMTAIL_NAMED:
        return Layout(NAMED[fmt]).parser()  # Promtail uses time.Parse here: `location` does not apply
    if fmt == "Unix":
        return _unix
    if fmt == "UnixMs":
        return lambda text: _int64(text) * 1_000_000
    if fmt == "UnixUs":
        return lambda text: _int64(text) * 1_000
    if fmt == "UnixNs":
        return _int64
    layout = Layout(fmt)
    if "06" not in fmt and "2006" not in fmt:
        return lambda text: layout.parse(text, location, _year_near_now)
    return layout.parser(location)


class TimestampStage(Stage):
    kind = "timestamp"

    def __init__(self, source: str, parsers: list[Parser], fudge: bool) -> None:
        self.source = source
        self.parsers = parsers
        self.fudge = fudge
        self.last_known: dict[frozenset[tuple[str, str]], int] = {}

    def parse(self, value: Any) -> int | None:
        text = to_string(value)
        if text is None:
            return None
        for parse in self.parsers:
            try:
                ns = parse(text)
            except (GoTimeError, ValueError, OverflowError):
                continue
            # Go keeps times beyond int64 nanoseconds; Loki's push format does not, so they count as failures.
            if INT64_MIN <= ns <= INT64_MAX:
                return ns
            return None
        return None

    def run(self, entries: list[Entry]) -> list[Entry]:
        source = self.source
        parse = self.parse
        only = self.parsers[0] if len(self.parsers) == 1 else None
        failed: list[Entry] = []
        for entry in entries:
            value = entry.extracted.get(source, _MISSING)
            ns: int | None
            if value.__class__ is str and only is not None:  # `parse`, inlined for the usual case
                try:
                    parsed = only(value)
                except (GoTimeError, ValueError, OverflowError):
                    ns = None
                else:
                    ns = parsed if INT64_MIN <= parsed <= INT64_MAX else None
            else:
                ns = None if value is _MISSING else parse(value)
            if ns is not None:
                entry.timestamp = ns
            else:
                failed.append(entry)
        if self.fudge:
            self._remember(entries, failed)
        return entries

    def _remember(self, entries: list[Entry], failed: list[Entry]) -> None:
        """`fudge`: a failed entry gets the last time of its label set + 1ns; remember the last times."""
        last_known = self.last_known
        latest: dict[frozenset[tuple[str, str]], int] = {}  # in first-seen order, as the LRU wants
        if not failed:
            # Only each label set's last entry matters. Entries with equal labels nearly always share
            # one dict (see Entry): list the dicts in C (first-seen order), find each one's last
            # entry from the end (a few steps), then hash each dict once.
            last_at: dict[int, int] = dict.fromkeys(map(id, map(_LABELS, entries)), -1)
            missing = len(last_at)
            i = len(entries)
            while missing:
                i -= 1
                key_id = id(entries[i].labels)
                if last_at[key_id] < 0:
                    last_at[key_id] = i
                    missing -= 1
            position: dict[frozenset[tuple[str, str]], int] = {}
            for i in last_at.values():
                label_set = frozenset(entries[i].labels.items())
                if position.get(label_set, -1) < i:
                    position[label_set] = i
                    latest[label_set] = entries[i].timestamp
        else:
            failures = set(map(id, failed))
            keys: dict[int, frozenset[tuple[str, str]]] = {}  # the dicts live through the batch
            for entry in entries:
                labels = entry.labels
                found = keys.get(id(labels))
                key = found if found is not None else keys.setdefault(id(labels), frozenset(labels.items()))
                if id(entry) in failures:
                    last = latest.get(key)
                    if last is None:
                        last = last_known.get(key)
                        if last is None:
                            continue
                    entry.timestamp = last + 1
                latest[key] = entry.timestamp
        for key, ns in latest.items():  # an LRU of label sets, as Promtail's
            last_known.pop(key, None)
            last_known[key] = ns
        while len(last_known) > LAST_KNOWN_SIZE:
            del last_known[next(iter(last_known))]


@register("timestamp")
def build(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block, "timestamp")
    source = conf.string("source")
    fmt = conf.string("format")
    fallback = conf.string_list("fallback_formats")
    location_name = conf.opt_string("location")
    action = conf.opt_string("action_on_failure")
    conf.done()
    if not source:
        raise StageError("timestamp source value is required if timestamp is specified")
    if not fmt:
        raise StageError("timestamp format is required")
    location = None
    if location_name is not None:
        try:
            location = ZoneInfo(location_name) if location_name not in ("", "UTC", "Local") else ZoneInfo("UTC")
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise StageError(f"invalid location specified: unknown time zone {location_name}") from err
    if action is None:
        action = "fudge"
    elif action not in ACTIONS:
        raise StageError(f"invalid action on failure (supported values are [{' '.join(ACTIONS)}])")
    parsers = [compile_format(f, location) for f in [fmt, *fallback]]
    return TimestampStage(source, parsers, action == "fudge")
