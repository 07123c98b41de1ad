"""List the S3 objects of a prefix whose key dates fall in [since, until], without listing the rest.

AWS log layouts put the date in the key, either as folders or in the file name:

    .../<YYYY>/<MM>/<DD>/...          ELB, VPC flow, CloudTrail, WAF, GuardDuty, S3 access (partitioned)
    .../year=<YYYY>/month=<MM>/day=<DD>/...   VPC flow, Hive-style
    .../<YYYY-MM-DD-HH>/...           MSK broker logs
    <DISTRIBUTION>.<YYYY-MM-DD-HH>.<id>      CloudFront (flat)
    <YYYY-MM-DD-hh-mm-ss>-<id>               S3 access logs (simple layout, flat)

The walk lists one folder level at a time (Delimiter '/'), which finds accounts, services,
regions and the like cheaply. At a level of year folders it stops listing and asks for
the years, months or days in range by name; a flat level of dated names is skipped
through with StartAfter. Inside a selected folder a file name's `YYYYMMDDTHHMMZ` (ELB,
VPC flow, CloudTrail, WAF) narrows the time to the minute. Objects whose key carries no
date are all included and counted as undated. Without --since and --until the prefix is
listed whole, in one recursive listing.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_NS = 1_000_000_000
_HOUR = 3600 * _NS
_DAY = 24 * _HOUR

_YEAR_DIR = re.compile(r"(year=)?(\d{4})/")
_HOUR_DIR = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(\d{2})/")
# A delivery time in the file name: the object holds what came shortly before it.
_NAME_MINUTE = re.compile(r"_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z[_.]")
# Flat dated names at one level: the group they sort within, then the date.
_FLAT = (
    re.compile(r"(?P<group>[A-Z0-9]+\.)(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})-(?P<h>\d{2})\.[^/]+"),  # CloudFront
    # S3 access
    re.compile(r"(?P<group>)(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})-(?P<h>\d{2})-\d{2}-\d{2}-[0-9A-Za-z]{16}"),
)
_DELIVERY_WINDOW = _HOUR  # a file named for time T holds entries from at most this long before T


@dataclass(slots=True, frozen=True)
class Listed:
    key: str
    size: int
    modified_ns: int  # LastModified
    dated: bool  # selected by a date in its key
    key_ns: int | None = None  # the latest time the key's date allows (None: no date in the key)


@dataclass(slots=True)
class ListStats:
    calls: int = 0  # ListObjectsV2 requests
    undated: int = 0  # objects whose key has no date (included)
    out_of_range: int = 0  # dated objects left out by --since/--until
    digests: int = 0  # CloudTrail digest files (not logs), or folders of them, left out


def _ns(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> int | None:
    try:
        return int(dt.datetime(y, m, d, h, mi, tzinfo=dt.UTC).timestamp()) * _NS
    except ValueError:
        return None


class Lister:
    """One bucket prefix; iterate `objects()` (blocking boto3 calls: run it in a thread)."""

    def __init__(self, client: Any, bucket: str, prefix: str, since_ns: int | None, until_ns: int | None) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.since = since_ns if since_ns is not None else 0
        # No --until: up to now (and a day, for clocks and delivery delays), not into empty future months.
        self.until = until_ns if until_ns is not None else time.time_ns() + _DAY
        self.filtered = since_ns is not None or until_ns is not None
        self.stats = ListStats()

    def _overlaps(self, start: int, end: int) -> bool:
        """[start, end) meets [since, until]."""
        return start <= self.until and end > self.since

    def _within(self, start: int, end: int) -> bool:
        return start >= self.since and end - 1 <= self.until

    def _pages(self, prefix: str, delimiter: str = "", start_after: str = "") -> Iterator[dict[str, Any]]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            args["Delimiter"] = delimiter
        if start_after:
            args["StartAfter"] = start_after
        while True:
            self.stats.calls += 1
            page = self.client.list_objects_v2(**args)
            yield page
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            args["ContinuationToken"] = token
            args.pop("StartAfter", None)

    def _listed(self, obj: dict[str, Any], dated: bool) -> Listed:
        key = obj["Key"]
        return Listed(key, int(obj.get("Size", 0)), int(obj["LastModified"].timestamp() * _NS), dated,
                      key_time(key) if dated else None)

    def _keep(self, obj: dict[str, Any], dated: bool) -> Iterator[Listed]:
        key = obj["Key"]
        if "/CloudTrail-Digest/" in key:
            self.stats.digests += 1
            return
        if dated:
            m = _NAME_MINUTE.search(key.rpartition("/")[2])
            if m is not None:
                t = _ns(*map(int, m.groups()))
                if t is not None and self.filtered and not self._overlaps(t - _DELIVERY_WINDOW, t + 1):
                    self.stats.out_of_range += 1
                    return
        else:
            self.stats.undated += 1
        yield self._listed(obj, dated)

    def objects(self) -> Iterator[Listed]:
        if not self.filtered:
            yield from self._all(self.prefix, dated=None)
        else:
            yield from self._walk(self.prefix)

    def _all(self, prefix: str, dated: bool | None) -> Iterator[Listed]:
        """Every object under prefix; `dated` None: decide from the key."""
        for page in self._pages(prefix):
            for obj in page.get("Contents", ()):
                yield from self._keep(obj, dated if dated is not None else _key_has_date(obj["Key"]))

    def _walk(self, prefix: str) -> Iterator[Listed]:
        years: list[tuple[str, int]] = []
        subdirs: list[str] = []
        seen: set[str] = set()  # after a StartAfter jump, a page may repeat folders already seen
        start_after = ""
        while True:
            jump = ""
            for page in self._pages(prefix, "/", start_after):
                for cp in page.get("CommonPrefixes", ()):
                    if cp["Prefix"] in seen:
                        continue
                    seen.add(cp["Prefix"])
                    name = cp["Prefix"][len(prefix):]
                    y = _YEAR_DIR.fullmatch(name)
                    h = _HOUR_DIR.fullmatch(name)
                    if y is not None:
                        years.append((y.group(1) or "", int(y.group(2))))
                    elif h is not None:
                        start = _ns(*map(int, h.groups()))
                        if start is not None and self._overlaps(start, start + _HOUR):
                            yield from self._all(cp["Prefix"], dated=True)
                        else:
                            self.stats.out_of_range += 1
                    elif name == "CloudTrail-Digest/":  # integrity files, not logs
                        self.stats.digests += 1
                    else:
                        subdirs.append(cp["Prefix"])
                for obj in page.get("Contents", ()):
                    name = obj["Key"][len(prefix):]
                    flat = _flat(name)
                    if flat is None:
                        yield from self._keep(obj, dated=False)
                        continue
                    group, start = flat
                    if start + _HOUR <= self.since:  # before the range: skip to the group's first day in it
                        self.stats.out_of_range += 1
                        day = dt.datetime.fromtimestamp(self.since // _NS, dt.UTC)
                        target = prefix + group + day.strftime("%Y-%m-%d")
                        if target > obj["Key"]:
                            jump = target
                            break
                    elif start - _DELIVERY_WINDOW > self.until:  # after it: skip the rest of the group
                        self.stats.out_of_range += 1
                        jump = prefix + group + "9999"
                        break
                    else:
                        yield from self._keep(obj, dated=True)
                if jump:
                    break
            if not jump:
                break
            start_after = jump
        for hive, year in years:
            yield from self._year(prefix, hive, year)
        for sub in subdirs:
            yield from self._walk(sub)

    def _year(self, base: str, hive: str, year: int) -> Iterator[Listed]:
        ystart, yend = _ns(year, 1, 1), _ns(year + 1, 1, 1) if year < 9999 else 1 << 62
        assert ystart is not None and yend is not None
        ydir = f"{base}{hive}{year:04d}/"
        if not self._overlaps(ystart, yend):
            self.stats.out_of_range += 1
            return
        if self._within(ystart, yend):
            yield from self._all(ydir, dated=True)
            return
        mname = "month=" if hive else ""
        dname = "day=" if hive else ""
        for month in range(1, 13):
            mstart = _ns(year, month, 1)
            mend = _ns(year + (month == 12), month % 12 + 1, 1) or (1 << 62)
            assert mstart is not None
            if not self._overlaps(mstart, mend):
                continue
            mdir = f"{ydir}{mname}{month:02d}/"
            if self._within(mstart, mend):
                yield from self._all(mdir, dated=True)
                continue
            day = mstart
            while day < mend:
                if self._overlaps(day, day + _DAY):
                    d = dt.datetime.fromtimestamp(day // _NS, dt.UTC).day
                    yield from self._all(f"{mdir}{dname}{d:02d}/", dated=True)
                day += _DAY


def _flat(name: str) -> tuple[str, int] | None:
    """(group, start ns) of a flat dated file name at this level."""
    for rx in _FLAT:
        m = rx.fullmatch(name)
        if m is not None:
            start = _ns(int(m["y"]), int(m["m"]), int(m["d"]), int(m["h"]))
            if start is not None:
                return m["group"], start
    return None


_DAY_DIRS = re.compile(r"(?:^|/)(?:year=)?(\d{4})/(?:month=)?(\d{2})/(?:day=)?(\d{2})/")


def key_time(key: str) -> int | None:
    """The latest time (unix ns) the date in a key allows, or None when it has none."""
    name = key.rpartition("/")[2]
    m = _NAME_MINUTE.search(name)
    if m is not None:
        return _ns(*map(int, m.groups()))
    flat = _flat(name)
    if flat is not None:
        return flat[1] + _HOUR
    m = _HOUR_IN_KEY.search(key)
    if m is not None:
        t = _ns(*map(int, m.groups()))
        return t + _HOUR if t is not None else None
    m = _DAY_DIRS.search(key)
    if m is not None:
        t = _ns(*map(int, m.groups()))
        return t + _DAY if t is not None else None
    return None


_HOUR_IN_KEY = re.compile(r"/(\d{4})-(\d{2})-(\d{2})-(\d{2})/")


def _key_has_date(key: str) -> bool:
    """When nothing is filtered: does the key carry a date?"""
    return key_time(key) is not None


def split_url(url: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, prefix)."""
    rest = url[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix
