"""Tests for the eventlogmessage and geoip stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relay.pipeline.stages import eventlogmessage as _eventlogmessage  # noqa: F401  (registers)
from relay.pipeline.stages import geoip as _geoip  # noqa: F401
from relay.pipeline.stages.base import KINDS, BuildContext, Entry, StageError


def build(kind: str, block: Any):
    return KINDS[kind](block, BuildContext(job="t"))


def entry(line: str = "l", **extracted: Any) -> Entry:
    return Entry(labels={"job": "t"}, line=line, timestamp=1, extracted=dict(extracted))


# --- eventlogmessage ----------------------------------------------------------------------------

MESSAGE = "Account Name: alice\r\nLogon Type:  3 \r\nno colon here\r\nIP: 10.0.0.1:445\r\n9lives: yes\r\n: empty key"


def test_eventlogmessage_splits_and_sanitizes() -> None:
    (e,) = build("eventlogmessage", {}).run([entry(message=MESSAGE)])
    assert e.extracted == {
        "message": MESSAGE, "Account_Name": "alice", "Logon_Type": "3", "IP": "10.0.0.1:445",
        "_lives": "yes", "_": "empty key",
    }


def test_eventlogmessage_drop_invalid_labels() -> None:
    (e,) = build("eventlogmessage", {"drop_invalid_labels": True}).run([entry(message=MESSAGE)])
    assert e.extracted == {"message": MESSAGE, "IP": "10.0.0.1:445"}


def test_eventlogmessage_existing_keys() -> None:
    a = entry(msg="IP: 1.1.1.1\r\nUser: bob", IP="old")
    build("eventlogmessage", {"source": "msg"}).run([a])
    assert a.extracted["IP"] == "old" and a.extracted["IP_extracted"] == "1.1.1.1" and a.extracted["User"] == "bob"
    b = entry(msg="IP: 1.1.1.1", IP="old")
    build("eventlogmessage", {"source": "msg", "overwrite_existing": True}).run([b])
    assert b.extracted["IP"] == "1.1.1.1" and "IP_extracted" not in b.extracted


def test_eventlogmessage_missing_source_passes_non_string_drops() -> None:
    stage = build("eventlogmessage", {})
    kept, dropped = entry(), entry(message=["not", "a", "string"])
    assert stage.run([kept, dropped]) == [kept]


@pytest.mark.parametrize("block,message", [({"source": "1bad"}, "invalid label name: 1bad"),
                                           ({"source": ""}, "invalid label name"),
                                           ({"drop_invalid_labels": "x"}, "'drop_invalid_labels'")])
def test_eventlogmessage_validation(block: Any, message: str) -> None:
    with pytest.raises(StageError, match=message):
        build("eventlogmessage", block)


# --- geoip --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    root = tmp_path_factory.mktemp("geoip")
    city = MMDBWriter(ip_version=6, database_type="GeoLite2-City", ipv4_compatible=True)
    city.insert_network(IPSet(["203.0.113.0/24"]), {
        "city": {"names": {"en": "Springfield", "de": "Springfeld"}},
        "country": {"names": {"en": "Freedonia"}, "iso_code": "FD"},
        "continent": {"code": "EU", "names": {"en": "Europe"}},
        "location": {"latitude": 48.5, "longitude": -2.25, "time_zone": "Europe/Paris"},
        "postal": {"code": "12345"},
        "subdivisions": [{"iso_code": "A", "names": {"en": "Region A"}}, {"iso_code": "B", "names": {"en": "County B"}}],
    })
    city.insert_network(IPSet(["2001:db8::/32"]), {"country": {"names": {"en": "Sylvania"}}})
    asn = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    asn.insert_network(IPSet(["198.51.100.0/24"]), {"autonomous_system_number": 64500,
                                                    "autonomous_system_organization": "Example Net"})
    paths = {"city": root / "city.mmdb", "asn": root / "asn.mmdb"}
    city.to_db_file(str(paths["city"]))
    asn.to_db_file(str(paths["asn"]))
    return paths


def test_geoip_city(dbs: dict[str, Path]) -> None:
    stage = build("geoip", {"db": str(dbs["city"]), "source": "ip", "db_type": "city"})
    a, b, c, d = entry(ip="203.0.113.9"), entry(ip="2001:db8::1"), entry(ip="192.0.2.1"), entry(ip="not an ip")
    stage.run([a, b, c, d])
    assert a.labels == {
        "job": "t", "geoip_city_name": "Springfield", "geoip_country_name": "Freedonia",
        "geoip_continent_name": "Europe", "geoip_continent_code": "EU", "geoip_postal_code": "12345",
        "geoip_timezone": "Europe/Paris", "geoip_subdivision_name": "County B", "geoip_subdivision_code": "B",
        "geoip_location_latitude": "48.5", "geoip_location_longitude": "-2.25",
    }
    assert b.labels == {"job": "t", "geoip_country_name": "Sylvania"}
    assert c.labels == {"job": "t"} and d.labels == {"job": "t"}
    e = entry(ip="203.0.113.200")  # from the cache path for a new address, and again
    stage.run([e])
    stage.run([entry(ip="203.0.113.200")])
    assert e.labels["geoip_city_name"] == "Springfield"


def test_geoip_asn(dbs: dict[str, Path]) -> None:
    stage = build("geoip", {"db": str(dbs["asn"]), "source": "ip", "db_type": "asn"})
    a, b = entry(ip="198.51.100.7"), entry()
    stage.run([a, b])
    assert a.labels == {"job": "t", "geoip_autonomous_system_number": "64500",
                        "geoip_autonomous_system_organization": "Example Net"}
    assert b.labels == {"job": "t"}


def test_geoip_without_source_adds_nothing(dbs: dict[str, Path]) -> None:
    stage = build("geoip", {"db": str(dbs["asn"]), "db_type": "asn"})
    (e,) = stage.run([entry("198.51.100.7", ip="198.51.100.7")])
    assert e.labels == {"job": "t"}


def test_geoip_validation(dbs: dict[str, Path], tmp_path: Path) -> None:
    cases = [
        ({"source": "ip", "db_type": "city"}, "db path cannot be empty"),
        ({"db": str(dbs["city"]), "source": "", "db_type": "city"}, "source cannot be empty"),
        ({"db": str(dbs["city"]), "source": "ip"}, "db type should be either city or asn"),
        ({"db": str(dbs["city"]), "source": "ip", "db_type": "country"}, "db type should be either city or asn"),
        ({"db": str(tmp_path / "missing.mmdb"), "source": "ip", "db_type": "city"}, "cannot open"),
        ({"db": str(dbs["asn"]), "source": "ip", "db_type": "city"}, "cannot be used with db_type city"),
    ]
    (tmp_path / "junk.mmdb").write_bytes(b"not a database")
    cases.append(({"db": str(tmp_path / "junk.mmdb"), "source": "ip", "db_type": "asn"}, "cannot open"))
    for block, message in cases:
        with pytest.raises(StageError, match=message):
            build("geoip", block)
