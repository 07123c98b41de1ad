"""Go's time.Parse for a layout, compiled once into a regex and a field list.

A Go layout spells the reference time `Mon Jan 2 15:04:05 -0700 MST 2006`. `Layout(text)` splits it into
the same chunks Go's `nextStdChunk` finds, turns each into a regex piece, and `parse(value)` gives unix
nanoseconds. Go's rules kept: a space run in the layout matches a space run in the value; `.000` wants
exactly that many digits, `.999` any number (or none); a fraction after seconds is read even if the layout
has none; `Z07:00` takes `Z`; month names match case-insensitively; day, hour, minute, second ranges are
checked, the day against the month; a zone abbreviation (`MST`) only sets an offset when the location
knows it (otherwise Go makes a fake zone with offset 0, so the wall clock is read as UTC).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ..cache import BoundedCache

NS = 1_000_000_000
CACHE_SIZE = 4096

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

# Named layouts of Go's time package.
NAMED = {
    "Layout": "01/02 03:04:05PM '06 -0700",
    "ANSIC": "Mon Jan _2 15:04:05 2006",
    "UnixDate": "Mon Jan _2 15:04:05 MST 2006",
    "RubyDate": "Mon Jan 02 15:04:05 -0700 2006",
    "RFC822": "02 Jan 06 15:04 MST",
    "RFC822Z": "02 Jan 06 15:04 -0700",
    "RFC850": "Monday, 02-Jan-06 15:04:05 MST",
    "RFC1123": "Mon, 02 Jan 2006 15:04:05 MST",
    "RFC1123Z": "Mon, 02 Jan 2006 15:04:05 -0700",
    "RFC3339": "2006-01-02T15:04:05Z07:00",
    "RFC3339Nano": "2006-01-02T15:04:05.999999999Z07:00",
    "Kitchen": "3:04PM",
    "Stamp": "Jan _2 15:04:05",
    "StampMilli": "Jan _2 15:04:05.000",
    "StampMicro": "Jan _2 15:04:05.000000",
    "StampNano": "Jan _2 15:04:05.000000000",
    "DateTime": "2006-01-02 15:04:05",
    "DateOnly": "2006-01-02",
    "TimeOnly": "15:04:05",
}


class GoTimeError(ValueError):
    """The value does not match the layout, or a field is out of range."""


# Chunk kinds (what a std chunk sets).
LONG_MONTH, MONTH, NUM_MONTH, ZERO_MONTH = "January", "Jan", "1", "01"
LONG_WEEKDAY, WEEKDAY = "Monday", "Mon"
DAY, UNDER_DAY, ZERO_DAY = "2", "_2", "02"
UNDER_YEARDAY, ZERO_YEARDAY = "__2", "002"
HOUR, HOUR12, ZERO_HOUR12 = "15", "3", "03"
MINUTE, ZERO_MINUTE, SECOND, ZERO_SECOND = "4", "04", "5", "05"
LONG_YEAR, YEAR = "2006", "06"
PM_UPPER, PM_LOWER = "PM", "pm"
TZ = "MST"
FRAC0, FRAC9 = ".0", ".9"

_NUM_TZ = ["-070000", "-07:00:00", "-0700", "-07:00", "-07"]
_ISO_TZ = ["Z070000", "Z07:00:00", "Z0700", "Z07:00", "Z07"]


def _lower_at(s: str, i: int) -> bool:
    return i < len(s) and "a" <= s[i] <= "z"


def _digit_at(s: str, i: int) -> bool:
    return i < len(s) and "0" <= s[i] <= "9"


def next_chunk(layout: str) -> tuple[str, str, int, str]:
    """(literal prefix, std kind or "", fraction digits, rest), as Go's nextStdChunk splits a layout."""
    n = len(layout)
    for i, c in enumerate(layout):
        rest = layout[i:]
        if c == "J" and rest.startswith("Jan"):
            if rest.startswith("January"):
                return layout[:i], LONG_MONTH, 0, layout[i + 7:]
            if not _lower_at(layout, i + 3):
                return layout[:i], MONTH, 0, layout[i + 3:]
        elif c == "M":
            if rest.startswith("Mon"):
                if rest.startswith("Monday"):
                    return layout[:i], LONG_WEEKDAY, 0, layout[i + 6:]
                if not _lower_at(layout, i + 3):
                    return layout[:i], WEEKDAY, 0, layout[i + 3:]
            if rest.startswith("MST"):
                return layout[:i], TZ, 0, layout[i + 3:]
        elif c == "0":
            if i + 1 < n and "1" <= layout[i + 1] <= "6":
                kind = [ZERO_MONTH, ZERO_DAY, ZERO_HOUR12, ZERO_MINUTE, ZERO_SECOND, YEAR][int(layout[i + 1]) - 1]
                return layout[:i], kind, 0, layout[i + 2:]
            if rest.startswith("002"):
                return layout[:i], ZERO_YEARDAY, 0, layout[i + 3:]
        elif c == "1":
            if rest.startswith("15"):
                return layout[:i], HOUR, 0, layout[i + 2:]
            return layout[:i], NUM_MONTH, 0, layout[i + 1:]
        elif c == "2":
            if rest.startswith("2006"):
                return layout[:i], LONG_YEAR, 0, layout[i + 4:]
            return layout[:i], DAY, 0, layout[i + 1:]
        elif c == "_":
            if rest.startswith("_2"):
                if rest.startswith("_2006"):  # a literal "_" then the year
                    return layout[: i + 1], LONG_YEAR, 0, layout[i + 5:]
                return layout[:i], UNDER_DAY, 0, layout[i + 2:]
            if rest.startswith("__2"):
                return layout[:i], UNDER_YEARDAY, 0, layout[i + 3:]
        elif c in "345":
            return layout[:i], {"3": HOUR12, "4": MINUTE, "5": SECOND}[c], 0, layout[i + 1:]
        elif c == "P" and rest.startswith("PM"):
            return layout[:i], PM_UPPER, 0, layout[i + 2:]
        elif c == "p" and rest.startswith("pm"):
            return layout[:i], PM_LOWER, 0, layout[i + 2:]
        elif c == "-" or c == "Z":
            for std in _NUM_TZ if c == "-" else _ISO_TZ:
                if rest.startswith(std):
                    return layout[:i], std, 0, layout[i + len(std):]
        elif c in ".," and i + 1 < n and layout[i + 1] in "09":
            ch = layout[i + 1]
            j = i + 1
            while j < n and layout[j] == ch:
                j += 1
            if not _digit_at(layout, j):
                return layout[:i], FRAC0 if ch == "0" else FRAC9, j - i - 1, layout[j:]
    return layout, "", 0, ""


def _literal(text: str) -> str:
    # Go's skip(): a space run in the layout matches a space run in the value.
    parts = re.split(r"( +)", text)
    return "".join(" +" if p.startswith(" ") else re.escape(p) for p in parts if p)


def _names(names: list[str]) -> str:
    return "(?i:" + "|".join(names) + ")"


_PIECES = {
    LONG_MONTH: "(" + _names(MONTHS) + ")",
    MONTH: "(" + _names([m[:3] for m in MONTHS]) + ")",
    NUM_MONTH: r"(\d\d?)",
    ZERO_MONTH: r"(\d\d)",
    LONG_WEEKDAY: _names(DAYS),
    WEEKDAY: _names([d[:3] for d in DAYS]),
    DAY: r"(\d\d?)",
    UNDER_DAY: r" ?(\d\d?)",
    ZERO_DAY: r"(\d\d)",
    UNDER_YEARDAY: r" {0,2}(\d{1,3})",
    ZERO_YEARDAY: r"(\d{3})",
    HOUR: r"(\d\d?)",
    HOUR12: r"(\d\d?)",
    ZERO_HOUR12: r"(\d\d)",
    MINUTE: r"(\d\d?)",
    ZERO_MINUTE: r"(\d\d)",
    SECOND: r"(\d\d?)",
    ZERO_SECOND: r"(\d\d)",
    LONG_YEAR: r"(\d{4})",
    YEAR: r"(\d\d)",
    PM_UPPER: "(AM|PM)",
    PM_LOWER: "(am|pm)",
    # Go's parseTimeZone: UTC, ChST/MeST, GMT[+-h], a signed offset, or 3-5 capitals (4 and 5 ending in T).
    TZ: r"(UTC|ChST|MeST|WITA|GMT(?:[+-](?:1\d|2[0-3]|0?\d)(?!\d))?|[+-](?:[01]?\d|2[0-3])(?!\d)|[A-Z]{3}(?![A-Z])|[A-Z]{3}T(?![A-Z])"
        r"|[A-Z]{4}T(?![A-Z]))",
    "-070000": r"([+-]\d{6})",
    "-07:00:00": r"([+-]\d\d:\d\d:\d\d)",
    "-0700": r"([+-]\d{4})",
    "-07:00": r"([+-]\d\d:\d\d)",
    "-07": r"([+-]\d\d)",
    "Z070000": r"(Z|[+-]\d{6})",
    "Z07:00:00": r"(Z|[+-]\d\d:\d\d:\d\d)",
    "Z0700": r"(Z|[+-]\d{4})",
    "Z07:00": r"(Z|[+-]\d\d:\d\d)",
    "Z07": r"(Z|[+-]\d\d)",
}

_FIELD = {
    LONG_MONTH: "month_name", MONTH: "month_name", NUM_MONTH: "month", ZERO_MONTH: "month",
    DAY: "day", UNDER_DAY: "day", ZERO_DAY: "day", UNDER_YEARDAY: "yday", ZERO_YEARDAY: "yday",
    HOUR: "hour", HOUR12: "hour12", ZERO_HOUR12: "hour12", MINUTE: "minute", ZERO_MINUTE: "minute",
    SECOND: "second", ZERO_SECOND: "second", LONG_YEAR: "year", YEAR: "year2", PM_UPPER: "pm", PM_LOWER: "pm",
    TZ: "zone", FRAC0: "frac", FRAC9: "frac",
}

_MONTH_NUMBER = {m.lower(): i + 1 for i, m in enumerate(MONTHS)} | {m[:3].lower(): i + 1 for i, m in enumerate(MONTHS)}
_CUMULATIVE = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365]


def is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if is_leap(year) else 28
    return _CUMULATIVE[month] - _CUMULATIVE[month - 1]


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year; day may overflow the month)."""
    y = year - (month <= 2)
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468 + day - 1


def _offset_seconds(text: str) -> int:
    """Seconds east of UTC of `+hh`, `+hhmm`, `+hh:mm`, `+hhmmss`, `+hh:mm:ss`."""
    digits = text[1:].replace(":", "")
    hours, minutes, seconds = int(digits[0:2]), int(digits[2:4] or 0), int(digits[4:6] or 0)
    if hours > 24 or minutes > 60 or seconds > 60:
        raise GoTimeError(f"time zone offset out of range: {text}")
    total = (hours * 60 + minutes) * 60 + seconds
    return -total if text[0] == "-" else total


_EPOCH = datetime(1970, 1, 1)


def wall_offset(location: ZoneInfo, wall: int) -> int:
    """The offset of `location` at a wall-clock time given as seconds since 1970-01-01 (wall)."""
    try:
        local = (_EPOCH + timedelta(seconds=wall)).replace(tzinfo=location)
    except OverflowError:
        return 0
    offset = local.utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def abbreviation_offset(location: ZoneInfo, wall: int, name: str) -> int | None:
    """The offset `location` uses under the abbreviation `name` around this time, if it has one (Go's lookupName)."""
    try:
        base = (_EPOCH + timedelta(seconds=wall)).replace(tzinfo=location)
    except OverflowError:
        return None
    for probe in (base, base.replace(fold=1), base.replace(month=1, day=1), base.replace(month=7, day=1)):
        if probe.tzname() == name:
            offset = probe.utcoffset()
            return int(offset.total_seconds()) if offset is not None else 0
    return None


_RFC3339_HEAD = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", re.ASCII)
_FRACTION_SCALE: list[int] = [10 ** (9 - n) for n in range(10)]


def _utc_fraction_fast_path(general: Callable[[str], int]) -> Callable[[str], int]:
    """RFC 3339 parsing with a shortcut for the usual log timestamp, `2006-01-02T15:04:05.123456789Z`.

    Such a value is its first 19 characters (cached: their time, as `general` reads them with a `Z`)
    plus a fraction of 1 to 9 ASCII digits; anything else goes to `general`, errors included.
    """
    heads: BoundedCache[str, int] = BoundedCache(CACHE_SIZE)
    scale = _FRACTION_SCALE

    def parse(value: str) -> int:
        if value[19:20] == "." and value[-1:] == "Z":
            fraction = value[20:-1]
            digits = len(fraction)
            if 0 < digits <= 9 and fraction.isdigit() and fraction.isascii():
                head = value[:19]
                seconds = heads.get(head)
                if seconds is None:
                    if _RFC3339_HEAD.fullmatch(head) is None:
                        return general(value)
                    try:
                        seconds = general(head + "Z")
                    except GoTimeError:
                        return general(value)
                    heads.put(head, seconds)
                return seconds + int(fraction) * scale[digits]
        return general(value)

    return parse


class Layout:
    """A Go layout compiled for parsing."""

    def __init__(self, layout: str) -> None:
        self.layout = layout
        pattern: list[str] = []
        fields: list[tuple[str, int]] = []
        rest = layout
        group = 0
        while rest:
            prefix, std, digits, rest = next_chunk(rest)
            pattern.append(_literal(prefix))
            if not std:
                break
            if std == FRAC0:
                pattern.append(rf"[.,](\d{{{digits}}})")
            elif std == FRAC9:
                pattern.append(r"(?:[.,](\d+))?")
            else:
                pattern.append(_PIECES[std])
            field = _FIELD.get(std, "offset")
            if std in (LONG_WEEKDAY, WEEKDAY):
                continue  # matched, then ignored, as in Go
            fields.append((field, group))
            group += 1
            if field == "second":
                # Go reads a fraction after the seconds even when the layout has none, unless one comes next.
                following = next_chunk(rest)[1]
                if following not in (FRAC0, FRAC9):
                    pattern.append(r"(?:[.,](\d+))?")
                    fields.append(("frac", group))
                    group += 1
        self.pattern = "".join(pattern)
        self.regex = re.compile(self.pattern, re.ASCII)
        self.fields = tuple(fields)
        self.has_year = any(f in ("year", "year2") for f, _ in fields)
        fracs = [group for f, group in fields if f == "frac"]
        self.frac_group = fracs[0] if len(fracs) == 1 else None

    def parser(self, location: ZoneInfo | None = None) -> Callable[[str], int]:
        """A fast `parse` for one location: what a value says up to its seconds is cached.

        Log timestamps share their second with many neighbours, so the key is the value without its
        fraction (a value with and without a fraction has the same whole seconds).
        """
        cache: BoundedCache[str, int] = BoundedCache(CACHE_SIZE)
        fullmatch = self.regex.fullmatch
        slow = self.parse
        frac_group = None if self.frac_group is None else self.frac_group + 1

        def parse(value: str) -> int:
            m = fullmatch(value)
            if m is None:
                raise GoTimeError(f"parsing time {value!r} as {self.layout!r}: cannot parse")
            nsec = 0
            key = value
            if frac_group is not None:
                start, end = m.span(frac_group)
                if start >= 0:
                    nsec = int((value[start:end] + "00000000")[:9])
                    key = value[: start - 1] + value[end:]
            seconds = cache.get(key)
            if seconds is None:
                seconds = cache.put(key, slow(value, location) - nsec)
            return seconds + nsec

        if self.layout in (NAMED["RFC3339"], NAMED["RFC3339Nano"]):
            return _utc_fraction_fast_path(parse)
        return parse

    def parse(
        self, value: str, location: ZoneInfo | None = None, year_for: Callable[[int], int] | None = None
    ) -> int:
        """Unix nanoseconds of `value`. A wall time without zone is in `location` (UTC if None).

        `year_for(month)` replaces the parsed year (Promtail gives layouts without a year one near now).
        """
        m = self.regex.fullmatch(value)
        if m is None:
            raise GoTimeError(f"parsing time {value!r} as {self.layout!r}: cannot parse")
        groups = m.groups()
        y, month, day, yday = 0, -1, -1, -1
        hour = minute = second = nsec = 0
        pm: str | None = None
        offset: int | None = None
        zone: str | None = None
        for field, i in self.fields:
            text = groups[i]
            if text is None:
                continue
            if field == "year":
                y = int(text)
            elif field == "month":
                month = int(text)
                if not 1 <= month <= 12:
                    raise GoTimeError(f"parsing time {value!r}: month out of range")
            elif field == "day":
                day = int(text)
            elif field == "hour":
                hour = int(text)
                if hour >= 24:
                    raise GoTimeError(f"parsing time {value!r}: hour out of range")
            elif field == "minute":
                minute = int(text)
                if minute >= 60:
                    raise GoTimeError(f"parsing time {value!r}: minute out of range")
            elif field == "second":
                second = int(text)
                if second >= 60:
                    raise GoTimeError(f"parsing time {value!r}: second out of range")
            elif field == "frac":
                nsec = int((text + "00000000")[:9])
            elif field == "offset":
                offset = 0 if text == "Z" else _offset_seconds(text)
            elif field == "month_name":
                month = _MONTH_NUMBER[text.lower()]
            elif field == "year2":
                y = int(text)
                y += 1900 if y >= 69 else 2000
            elif field == "hour12":
                hour = int(text)
                if hour > 12:
                    raise GoTimeError(f"parsing time {value!r}: hour out of range")
            elif field == "pm":
                pm = text.upper()
            elif field == "zone":
                zone = text
            elif field == "yday":
                yday = int(text)
        if pm == "PM" and hour < 12:
            hour += 12
        elif pm == "AM" and hour == 12:
            hour = 0
        if yday >= 0:
            month, day = self._from_yday(value, y, yday, month, day)
        else:
            if month < 0:
                month = 1
            if day < 0:
                day = 1
        if day < 1 or day > days_in(month, y):
            raise GoTimeError(f"parsing time {value!r}: day out of range")
        if year_for is not None:
            y = year_for(month)  # may turn Feb 29 into Mar 1, as Go's AddDate does
        wall = (days_from_civil(y, month, day) * 86400) + hour * 3600 + minute * 60 + second
        if offset is None:
            if zone is not None:
                if zone != "UTC" and location is not None:
                    offset = abbreviation_offset(location, wall, zone) or 0
                else:
                    offset = 0
            elif location is not None:
                offset = wall_offset(location, wall)
            else:
                offset = 0
        return (wall - offset) * NS + nsec

    @staticmethod
    def _from_yday(value: str, year: int, yday: int, month: int, day: int) -> tuple[int, int]:
        if yday < 1 or yday > 365 + is_leap(year):
            raise GoTimeError(f"parsing time {value!r}: day-of-year out of range")
        before = 0
        m = 1
        while yday > before + days_in(m, year):
            before += days_in(m, year)
            m += 1
        d = yday - before
        if (month >= 0 and month != m) or (day >= 0 and day != d):
            raise GoTimeError(f"parsing time {value!r}: day-of-year does not match month or day")
        return m, d


# --- Go's time.ParseDuration ------------------------------------------------------------------------

_DURATION_NUMBER = re.compile(r"([0-9]*)(?:\.([0-9]*))?")
_DURATION_UNIT = re.compile(r"[^0-9.]*")
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": NS, "m": 60 * NS,
                "h": 3600 * NS}


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration (`1h30m`, `500ms`, `-2s`, `0`), in seconds; ValueError with Go's wording."""
    body = text
    negative = body[:1] == "-"
    if body[:1] in ("-", "+"):
        body = body[1:]
    if body == "0":
        return 0.0
    invalid = f'time: invalid duration "{text}"'
    if not body:
        raise ValueError(invalid)
    total, pos = 0, 0
    while pos < len(body):
        number = _DURATION_NUMBER.match(body, pos)
        assert number is not None  # every part of it is optional
        whole, fraction = number.group(1), number.group(2)
        if not whole and not fraction:  # no digits before or after the point ("", ".", "x")
            raise ValueError(invalid)
        unit_match = _DURATION_UNIT.match(body, number.end())
        assert unit_match is not None
        unit = unit_match.group()
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        scale = _DURATION_NS.get(unit)
        if scale is None:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += int(whole or "0") * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)  # what is below 1ns is dropped, as in Go
        if total > 1 << 63:
            raise ValueError(invalid)
        pos = unit_match.end()
    if total == 1 << 63 and not negative:
        raise ValueError(invalid)
    return (-total if negative else total) / NS
