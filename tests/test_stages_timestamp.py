"""Tests for relay.pipeline.gotime (Go layouts) and the timestamp stage."""

from __future__ import annotations

import time
from calendar import timegm
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from relay.pipeline.gotime import NAMED, GoTimeError, Layout, days_from_civil
from relay.pipeline.stages import timestamp as _timestamp
from relay.pipeline.stages.base import KINDS, BuildContext, Entry, StageError

S = 1_000_000_000


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ns: int = 0, offset_s: int = 0) -> int:
    return (timegm((y, mo, d, h, mi, s)) - offset_s) * S + ns


def test_days_from_civil_matches_the_calendar() -> None:
    for y, m, d in [(1970, 1, 1), (2000, 2, 29), (1969, 12, 31), (2024, 12, 31), (1600, 3, 1), (2100, 3, 1)]:
        assert days_from_civil(y, m, d) * 86400 == timegm((y, m, d, 0, 0, 0))


@pytest.mark.parametrize(
    "name,value,expected",
    [
        ("RFC3339", "2024-05-06T07:08:09Z", utc(2024, 5, 6, 7, 8, 9)),
        ("RFC3339", "2024-05-06T07:08:09+02:00", utc(2024, 5, 6, 7, 8, 9, offset_s=7200)),
        # Go reads a fraction after the seconds even where the layout has none
        ("RFC3339", "2024-05-06T07:08:09.25Z", utc(2024, 5, 6, 7, 8, 9, 250_000_000)),
        ("RFC3339Nano", "2024-05-06T07:08:09.123456789-05:30", utc(2024, 5, 6, 7, 8, 9, 123456789, -19800)),
        ("RFC3339Nano", "2024-05-06T07:08:09Z", utc(2024, 5, 6, 7, 8, 9)),
        ("RFC3339Nano", "2024-05-06T07:08:09.1234567891234Z", utc(2024, 5, 6, 7, 8, 9, 123456789)),
        ("RFC3339Nano", "2024-05-06T07:08:09,5Z", utc(2024, 5, 6, 7, 8, 9, 500_000_000)),
        ("ANSIC", "Mon May  6 07:08:09 2024", utc(2024, 5, 6, 7, 8, 9)),
        ("ANSIC", "Sat Jun 15 17:00:01 2024", utc(2024, 6, 15, 17, 0, 1)),
        ("UnixDate", "Mon May  6 07:08:09 UTC 2024", utc(2024, 5, 6, 7, 8, 9)),
        # an unknown abbreviation makes a fake zone of offset 0: the wall clock is read as UTC
        ("UnixDate", "Mon May  6 07:08:09 PDT 2024", utc(2024, 5, 6, 7, 8, 9)),
        ("RubyDate", "Mon May 06 07:08:09 -0700 2024", utc(2024, 5, 6, 7, 8, 9, offset_s=-25200)),
        ("RFC822", "06 May 24 07:08 UTC", utc(2024, 5, 6, 7, 8)),
        ("RFC822Z", "06 May 99 07:08 +0100", utc(1999, 5, 6, 7, 8, offset_s=3600)),
        ("RFC850", "Monday, 06-May-24 07:08:09 UTC", utc(2024, 5, 6, 7, 8, 9)),
        ("RFC1123", "Mon, 06 May 2024 07:08:09 GMT", utc(2024, 5, 6, 7, 8, 9)),
        ("RFC1123Z", "Mon, 06 May 2024 07:08:09 -0000", utc(2024, 5, 6, 7, 8, 9)),
        # no date in the layout: January 1 of year 0, as Go gives it
        ("Kitchen", "3:04PM", (days_from_civil(0, 1, 1) * 86400 + 15 * 3600 + 4 * 60) * S),
    ],
)
def test_named_layouts(name: str, value: str, expected: int) -> None:
    assert Layout(NAMED[name]).parse(value) == expected


@pytest.mark.parametrize(
    "layout,value,expected",
    [
        ("2006-01-02 15:04:05.000", "2024-02-29 23:59:58.007", utc(2024, 2, 29, 23, 59, 58, 7_000_000)),
        ("2006-01-02 15:04:05.000000", "2024-02-29 23:59:58.000123", utc(2024, 2, 29, 23, 59, 58, 123_000)),
        ("2006-01-02 15:04:05,000", "2024-02-29 23:59:58,250", utc(2024, 2, 29, 23, 59, 58, 250_000_000)),
        ("02/Jan/2006:15:04:05 -0700", "10/Oct/2000:13:55:36 -0700", utc(2000, 10, 10, 13, 55, 36, offset_s=-25200)),
        ("January 2, 2006 3:04:05 pm", "march 9, 2021 12:30:00 am", utc(2021, 3, 9, 0, 30)),
        ("January 2, 2006 3:04:05 PM", "March 9, 2021 12:30:00 PM", utc(2021, 3, 9, 12, 30)),
        ("January 2, 2006 03:04:05 PM", "March 9, 2021 01:30:00 PM", utc(2021, 3, 9, 13, 30)),
        ("2006-1-2 15:4:5", "2021-3-9 7:5:3", utc(2021, 3, 9, 7, 5, 3)),
        ("2006-01-02T15:04:05Z0700", "2021-03-09T07:05:03Z", utc(2021, 3, 9, 7, 5, 3)),
        ("2006-01-02T15:04:05Z0700", "2021-03-09T07:05:03+0130", utc(2021, 3, 9, 7, 5, 3, offset_s=5400)),
        ("2006-01-02T15:04:05-07", "2021-03-09T07:05:03-03", utc(2021, 3, 9, 7, 5, 3, offset_s=-10800)),
        ("2006-01-02T15:04:05-07:00:00", "2021-03-09T07:05:03+01:02:03", utc(2021, 3, 9, 7, 5, 3, offset_s=3723)),
        ("2006-01-02 15:04:05.999", "2021-03-09 07:05:03", utc(2021, 3, 9, 7, 5, 3)),
        ("2006-01-02  15:04", "2021-03-09    07:05", utc(2021, 3, 9, 7, 5)),
        ("Monday 2006-01-02", "tuesday 2021-03-09", utc(2021, 3, 9)),
        ("2006 002", "2024 060", utc(2024, 2, 29)),
        ("_2006-01", "_2021-03", utc(2021, 3, 1)),
    ],
)
def test_custom_layouts(layout: str, value: str, expected: int) -> None:
    assert Layout(layout).parse(value) == expected


@pytest.mark.parametrize(
    "layout,value",
    [
        ("2006-01-02", "2023-02-29"),  # not a leap year
        ("2006-01-02", "2024-13-01"),
        ("2006-01-02", "2024-04-31"),
        ("2006-01-02 15:04", "2024-04-01 24:00"),
        ("2006-01-02 15:04", "2024-04-01 10:60"),
        ("2006-01-02 15:04:05", "2024-04-01 10:00:60"),
        ("2006-01-02 03:04", "2024-04-01 13:00"),
        ("2006-01-02 15:04:05.000", "2024-04-01 10:00:00.12"),  # .000 wants three digits
        ("2006-01-02", "2024-04-01 trailing"),
        ("2006-01-02", "24-04-01"),
        ("RFC3339 is not a layout", "2024-04-01"),
        ("2006-01-02T15:04:05Z07:00", "2024-04-01T10:00:00+25:00"),
        ("Jan 2", "Foo 2"),
    ],
)
def test_bad_values_are_refused(layout: str, value: str) -> None:
    with pytest.raises(GoTimeError):
        Layout(layout).parse(value)


def test_location_applies_to_wall_time_without_zone_only() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    layout = Layout("2006-01-02 15:04:05")
    assert layout.parse("2024-07-01 12:00:00", berlin) == utc(2024, 7, 1, 10)  # CEST, +2
    assert layout.parse("2024-01-01 12:00:00", berlin) == utc(2024, 1, 1, 11)  # CET, +1
    with_offset = Layout("2006-01-02 15:04:05 -0700")
    assert with_offset.parse("2024-07-01 12:00:00 +0000", berlin) == utc(2024, 7, 1, 12)


def test_zone_abbreviation_known_to_the_location() -> None:
    layout = Layout("2006-01-02 15:04:05 MST")
    ny = ZoneInfo("America/New_York")
    assert layout.parse("2024-07-01 12:00:00 EDT", ny) == utc(2024, 7, 1, 16)
    assert layout.parse("2024-01-01 12:00:00 EST", ny) == utc(2024, 1, 1, 17)
    assert layout.parse("2024-01-01 12:00:00 XYZ", ny) == utc(2024, 1, 1, 12)


# --- the stage ----------------------------------------------------------------------------------


def build(block: Any):
    return KINDS["timestamp"](block, BuildContext(job="t"))


def entry(value: Any = None, labels: dict[str, str] | None = None, ts: int = 7) -> Entry:
    extracted = {} if value is None else {"ts": value}
    return Entry(labels=labels or {"job": "t"}, line="l", timestamp=ts, extracted=extracted)


@pytest.mark.parametrize(
    "fmt,value,expected",
    [
        ("RFC3339Nano", "2024-05-06T07:08:09.5Z", utc(2024, 5, 6, 7, 8, 9, 500_000_000)),
        ("Unix", "1562708916", 1562708916 * S),
        ("Unix", 1562708916, 1562708916 * S),
        ("Unix", "1562708916.000000123", 1562708916 * S + 123),
        ("Unix", "1562708916.5", 1562708916 * S + 500_000_000),
        ("Unix", 1562708916.25, 1562708916 * S + 250_000_000),
        ("UnixMs", "1562708916414", 1562708916414 * 1_000_000),
        ("UnixUs", "1562708916414123", 1562708916414123 * 1000),
        ("UnixNs", "1562708916000000123", 1562708916000000123),
        ("UnixNs", "-5", -5),
        ("2006-01-02 15:04:05", "2024-05-06 07:08:09", utc(2024, 5, 6, 7, 8, 9)),
    ],
)
def test_stage_formats(fmt: str, value: Any, expected: int) -> None:
    (e,) = build({"source": "ts", "format": fmt}).run([entry(value)])
    assert e.timestamp == expected


@pytest.mark.parametrize("fmt,value", [("Unix", "1.2.3"), ("Unix", "12a"), ("UnixMs", "1_000"), ("UnixMs", " 5"),
                                       ("UnixNs", "99999999999999999999"), ("UnixMs", 1.5)])
def test_stage_unix_refuses_what_go_parseint_refuses(fmt: str, value: Any) -> None:
    (e,) = build({"source": "ts", "format": fmt, "action_on_failure": "skip"}).run([entry(value)])
    assert e.timestamp == 7


def test_named_formats_ignore_location_custom_layouts_use_it() -> None:
    named = build({"source": "ts", "format": "RFC1123", "location": "America/New_York"})
    (e,) = named.run([entry("Mon, 01 Jul 2024 12:00:00 UTC")])
    assert e.timestamp == utc(2024, 7, 1, 12)
    custom = build({"source": "ts", "format": "2006-01-02 15:04:05", "location": "America/New_York"})
    (e,) = custom.run([entry("2024-07-01 12:00:00")])
    assert e.timestamp == utc(2024, 7, 1, 16)


def test_fallback_formats_in_order() -> None:
    stage = build({"source": "ts", "format": "RFC3339", "fallback_formats": ["UnixMs", "2006-01-02"]})
    a, b, c, d = entry("2024-01-02T03:04:05Z"), entry("1700000000000"), entry("2024-01-02"), entry("junk")
    stage.run([a, b, c, d])
    assert a.timestamp == utc(2024, 1, 2, 3, 4, 5)
    assert b.timestamp == 1700000000000 * 1_000_000
    assert c.timestamp == utc(2024, 1, 2)
    assert d.timestamp == c.timestamp + 1  # fudge: same labels as c


def test_layout_without_year_gets_the_current_year() -> None:
    (e,) = build({"source": "ts", "format": "Jan _2 15:04:05"}).run([entry("Jun  3 04:05:06")])
    assert e.timestamp == utc(time.gmtime().tm_year, 6, 3, 4, 5, 6)  # June is never at the new-year edge


def test_layout_without_year_at_the_new_year_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    stage = build({"source": "ts", "format": "Jan 2 15:04:05"})
    january = time.struct_time((2025, 1, 1, 0, 10, 0, 2, 1, 0))
    monkeypatch.setattr(_timestamp.time, "gmtime", lambda *a: january)
    a, b = entry("Dec 31 23:59:00"), entry("Jan 1 00:05:00")
    stage.run([a, b])
    assert a.timestamp == utc(2024, 12, 31, 23, 59)
    assert b.timestamp == utc(2025, 1, 1, 0, 5)
    december = time.struct_time((2024, 12, 31, 23, 59, 0, 1, 366, 0))
    monkeypatch.setattr(_timestamp.time, "gmtime", lambda *a: december)
    (c,) = stage.run([entry("Jan 1 00:00:30")])
    assert c.timestamp == utc(2025, 1, 1, 0, 0, 30)
    # Feb 29 without a year in a non-leap year rolls over to Mar 1, as Go's AddDate does
    monkeypatch.setattr(_timestamp.time, "gmtime", lambda *a: time.struct_time((2025, 3, 2, 0, 0, 0, 6, 61, 0)))
    (d,) = stage.run([entry("Feb 29 01:00:00")])
    assert d.timestamp == utc(2025, 3, 1, 1)


def test_fudge_per_label_set() -> None:
    stage = build({"source": "ts", "format": "RFC3339"})
    a1 = entry("2024-01-01T00:00:00Z", {"app": "a"})
    b0 = entry("junk", {"app": "b"}, ts=99)  # nothing known for b yet: unchanged
    a2 = entry("junk", {"app": "a"})
    a3 = entry(None, {"app": "a"})  # missing source is a failure too
    b1 = entry("2024-02-01T00:00:00Z", {"app": "b"})
    b2 = entry({"x": 1}, {"app": "b"})  # not convertible to a string
    stage.run([a1, b0, a2, a3, b1, b2])
    base_a, base_b = utc(2024, 1, 1), utc(2024, 2, 1)
    assert [a1.timestamp, a2.timestamp, a3.timestamp] == [base_a, base_a + 1, base_a + 2]
    assert [b0.timestamp, b1.timestamp, b2.timestamp] == [99, base_b, base_b + 1]
    # remembered across batches
    (a4,) = stage.run([entry("junk", {"app": "a"})])
    assert a4.timestamp == base_a + 3


def test_fudge_remembers_the_last_entry_of_a_label_set_in_a_batch_without_failures() -> None:
    # Two dicts with equal labels: the last entry in batch order counts, not the latest time.
    stage = build({"source": "ts", "format": "RFC3339"})
    shared, other = {"app": "a"}, {"app": "a"}
    stage.run([entry("2024-01-01T00:00:10Z", shared), entry("2024-01-01T00:00:30Z", other),
               entry("2024-01-01T00:00:20Z", shared), entry("2024-01-01T00:00:05Z", {"app": "b"})])
    a, b = stage.run([entry("junk", {"app": "a"}), entry("junk", {"app": "b"})])
    assert (a.timestamp, b.timestamp) == (utc(2024, 1, 1, 0, 0, 20) + 1, utc(2024, 1, 1, 0, 0, 5) + 1)


def test_skip_keeps_the_timestamp() -> None:
    stage = build({"source": "ts", "format": "RFC3339", "action_on_failure": "skip"})
    good, bad = entry("2024-01-01T00:00:00Z"), entry("junk", ts=42)
    stage.run([good, bad])
    assert good.timestamp == utc(2024, 1, 1) and bad.timestamp == 42


def test_time_beyond_int64_nanoseconds_is_a_failure() -> None:
    stage = build({"source": "ts", "format": "RFC3339", "action_on_failure": "skip"})
    (e,) = stage.run([entry("9999-01-01T00:00:00Z")])
    assert e.timestamp == 7


@pytest.mark.parametrize(
    "block,message",
    [
        ({}, "timestamp source value is required if timestamp is specified"),
        ({"format": "RFC3339"}, "timestamp source value is required if timestamp is specified"),
        ({"source": "ts"}, "timestamp format is required"),
        ({"source": "ts", "format": "RFC3339", "location": "Mars/Olympus"}, "invalid location specified"),
        ({"source": "ts", "format": "RFC3339", "action_on_failure": "drop"},
         r"invalid action on failure \(supported values are \[skip fudge\]\)"),
        ({"source": "ts", "format": "RFC3339", "fallback_formats": "Unix"}, "'fallback_formats'"),
    ],
)
def test_stage_validation(block: Any, message: str) -> None:
    with pytest.raises(StageError, match=message):
        build(block)


def test_cached_parser_agrees_with_parse() -> None:
    for layout, values in [
        (NAMED["RFC3339Nano"], ["2024-05-06T07:08:09.5Z", "2024-05-06T07:08:09Z", "2024-05-06T07:08:09.000001Z",
                                "2024-05-06T07:08:09.5+01:00", "2024-05-06T07:08:10.5Z"]),
        ("2006-01-02 15:04:05.000", ["2024-05-06 07:08:09.001", "2024-05-06 07:08:09.999", "2024-05-06 07:08:09,100"]),
        ("2006-01-02 15:04", ["2024-05-06 07:08", "2024-05-06 07:09"]),
    ]:
        compiled = Layout(layout)
        fast = compiled.parser(ZoneInfo("Asia/Kolkata"))
        for value in values * 2:
            assert fast(value) == compiled.parse(value, ZoneInfo("Asia/Kolkata")), (layout, value)
        with pytest.raises(GoTimeError):
            fast("nonsense")


@pytest.mark.parametrize("name", ["RFC3339", "RFC3339Nano"])
def test_utc_fraction_shortcut_agrees_with_parse(name: str) -> None:
    # Values near the shortcut's shape, valid and not: the answer (or the error) must be parse()'s.
    values = ["2024-05-06T07:08:09.5Z", "2024-05-06T07:08:09.123456789Z", "2024-05-06T07:08:09.1234567891Z",
              "2024-05-06T07:08:09.000000000Z", "2024-05-06T07:08:09.Z", "2024-05-06T07:08:09,5Z",
              "2024-05-06T07:08:09.5z", "2024-05-06T07:08:09.5+00:00", "2024-02-29T23:59:59.9Z",
              "2023-02-29T23:59:59.9Z", "2024-13-06T07:08:09.5Z", "2024-05-06T24:08:09.5Z",
              "2024-05-06T07:60:09.5Z", "2024-05-06T07:08:60.5Z", "2024-05-06T07:08:09.\u0665Z",
              "2024-05-06T7:08:09.55Z", "2024-05-06X07:08:09.5Z", "2024-05-06T07:08:09.5",
              "2024-05-06T07:08:09.-5Z", "2024-05-06T07:08:09.+5Z", "\u0662024-05-06T07:08:09.5Z", ""]
    compiled = Layout(NAMED[name])
    fast = compiled.parser()
    for value in values * 2:  # the second round answers from the cache
        try:
            expected: int | str = compiled.parse(value)
        except GoTimeError as e:
            expected = str(e)
        try:
            got: int | str = fast(value)
        except GoTimeError as e:
            got = str(e)
        assert got == expected, value
