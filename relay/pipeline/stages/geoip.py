"""`geoip`: look an extracted IP address up in a MaxMind database and add what is found as labels.

`db_type: city` adds geoip_city_name, geoip_country_name, geoip_continent_name, geoip_continent_code,
geoip_location_latitude/_longitude, geoip_postal_code, geoip_timezone, geoip_subdivision_name and
geoip_subdivision_code (English names, the most specific subdivision); `asn` adds
geoip_autonomous_system_number and geoip_autonomous_system_organization. Empty fields add nothing.
Unlike Promtail, which accepts any `db_type` and a database of the wrong kind and then adds nothing,
both are refused at start. Lookups are cached per address.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ...cache import BoundedCache
from ..gotemplate import go_float
from ..values import to_string
from .base import BuildContext, Entry, LabelMemo, Stage, StageError, register, set_labels
from .block import Block

CACHE_SIZE = 10_000
# geoip2-golang's readers accept these database kinds for each lookup.
CITY_TYPES = ("City", "Enterprise")
ASN_TYPES = ("ASN",)


def _en(record: Any) -> str:
    if isinstance(record, dict):
        names = record.get("names")
        if isinstance(names, dict):
            name = names.get("en")
            if isinstance(name, str):
                return name
    return ""


def _text(record: Any, key: str) -> str:
    value = record.get(key) if isinstance(record, dict) else None
    return value if isinstance(value, str) else ""


def city_labels(record: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    pairs = [
        ("geoip_city_name", _en(record.get("city"))),
        ("geoip_country_name", _en(record.get("country"))),
        ("geoip_continent_name", _en(record.get("continent"))),
        ("geoip_continent_code", _text(record.get("continent"), "code")),
        ("geoip_postal_code", _text(record.get("postal"), "code")),
        ("geoip_timezone", _text(record.get("location"), "time_zone")),
    ]
    subdivisions = record.get("subdivisions")
    if isinstance(subdivisions, list) and subdivisions:
        last = subdivisions[-1]
        pairs.append(("geoip_subdivision_name", _en(last)))
        pairs.append(("geoip_subdivision_code", _text(last, "iso_code")))
    for name, value in pairs:
        if value:
            out[name] = value
    location = record.get("location")
    if isinstance(location, dict):
        lat, lon = location.get("latitude") or 0.0, location.get("longitude") or 0.0
        if lat != 0 or lon != 0:
            out["geoip_location_latitude"] = go_float(float(lat))
            out["geoip_location_longitude"] = go_float(float(lon))
    return out


def asn_labels(record: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    number = record.get("autonomous_system_number")
    if isinstance(number, int) and number:
        out["geoip_autonomous_system_number"] = str(number)
    org = record.get("autonomous_system_organization")
    if isinstance(org, str) and org:
        out["geoip_autonomous_system_organization"] = org
    return out


class GeoIPStage(Stage):
    kind = "geoip"

    def __init__(self, reader: Any, source: str | None, db_type: str) -> None:
        self.reader = reader
        self.source = source
        self.to_labels = city_labels if db_type == "city" else asn_labels
        self.cache: BoundedCache[str, dict[str, str]] = BoundedCache(CACHE_SIZE)

    def lookup(self, text: str) -> dict[str, str]:
        found = self.cache.get(text)
        if found is not None:
            return found
        try:
            address = ipaddress.ip_address(text)
            record = self.reader.get(address)
        except ValueError:  # not an address, or IPv6 in an IPv4-only database
            record = None
        return self.cache.put(text, self.to_labels(record) if isinstance(record, dict) else {})

    def run(self, entries: list[Entry]) -> list[Entry]:
        source = self.source
        if source is None:  # Promtail looks up a nil address: nothing is ever found
            return entries
        memo: LabelMemo = {}
        for entry in entries:
            if source not in entry.extracted:
                continue
            text = to_string(entry.extracted[source])
            if text is None:
                continue
            found = self.lookup(text)
            if found:
                entry.labels = set_labels(entry.labels, tuple(found.items()), memo)
        return entries


@register("geoip")
def build(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block, "geoip")
    path = conf.string("db")
    source = conf.opt_string("source")
    db_type = conf.string("db_type")
    conf.done()
    if not path:
        raise StageError("db path cannot be empty")
    if source == "":
        raise StageError("source cannot be empty")
    if not db_type:
        raise StageError("db type should be either city or asn")
    if db_type not in ("city", "asn"):
        raise StageError(f"db_type {db_type!r}: db type should be either city or asn")
    # Imported by the one stage that needs it: the Lambda function (whose zip leaves it out unless
    # asked) and every relay without a geoip stage skip it.
    import maxminddb

    try:
        reader = maxminddb.open_database(path)
    except (OSError, maxminddb.InvalidDatabaseError, ValueError) as err:
        raise StageError(f"db: cannot open {path}: {err}") from None
    kind = reader.metadata().database_type
    if not any(t in kind for t in (CITY_TYPES if db_type == "city" else ASN_TYPES)):
        reader.close()
        raise StageError(f"db: a {kind} database cannot be used with db_type {db_type}")
    return GeoIPStage(reader, source, db_type)
