"""Protobuf pushes to a job that passes entries through (no stages, incoming times, no line limit)
keep each entry encoded (PushRaw) and take their time bounds from one merged parse (PushTimes).

Everything here is compared with the full path (PushDecoder without pass_through, StreamAdapter
streams): the same chunks, counts, drops, errors and 400s.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import snappy

from relay.config import parse_config
from relay.pipeline import Outcome, Processor
from relay.proto import PushRequest, StreamAdapter, length_delimited, varint
from relay.sources.content import BadRequest
from relay.sources.push import Decoded, PushDecoder
from tests.conftest import push_config
from tests.inproc import InProcessRelay, Loki

S = 1_000_000_000
DAY = 86_400 * S
NOW = 1_780_000_000 * S + 123_456_789
LIMIT = 1 << 24
LABELS = ['{app="a"}', '{app="b", __tenant_id__="t2"}', '{app="drop"}', '{__only="hidden"}', "not labels",
          '{app="a", long="' + "v" * 3000 + '"}', '{app="é", zone="z"}', "{}"]
DROP = [{"source_labels": ["app"], "regex": "drop", "action": "drop"}]


def passing(limits: dict[str, Any] | None = None, stages: list[Any] | None = None, **job: Any) -> Processor:
    """A push job's processor, incoming times and a relabel drop unless `job` says otherwise."""
    cfg = push_config("http://loki.invalid/loki/api/v1/push", 0, **{"use_incoming_timestamp": True, **job})
    cfg["scrape_configs"][0]["relabel_configs"] = DROP
    if stages:
        cfg["scrape_configs"][0]["pipeline_stages"] = stages
    if limits:
        cfg["limits_config"] = limits
    parsed = parse_config(cfg)
    return Processor(parsed.jobs[0], parsed.limits)


def random_time(rnd: random.Random) -> tuple[int, int] | None:
    """(seconds, nanos) of an entry's timestamp, or None for no timestamp."""
    kind = rnd.randrange(10)
    if kind == 0:
        return None
    if kind == 1:
        return 0, rnd.choice([0, 1, 500_000_000])  # second 0: not encoded
    if kind == 2:
        return -rnd.randrange(1, 10**6), rnd.randrange(S)
    if kind == 3:
        return divmod(NOW - 8 * DAY + rnd.randrange(-5 * S, 5 * S), S)  # too old
    if kind == 4:
        return divmod(NOW + 3600 * S + rnd.randrange(S), S)  # too new
    if kind == 5:  # at a bound, to the nanosecond
        return divmod(rnd.choice([NOW - 7 * DAY, NOW - 7 * DAY - 1, NOW + 600 * S, NOW + 600 * S + 1]), S)
    return divmod(NOW - rnd.randrange(3 * DAY), S)


def random_request(rnd: random.Random, window: bool = True) -> bytes:
    req = PushRequest()
    for _ in range(rnd.randrange(6)):
        st = req.streams.add(labels=rnd.choice(LABELS))
        if rnd.random() < 0.3:
            st.hash = rnd.randrange(1 << 64)
        for _ in range(rnd.choice([0, 1, 2, 5, 12])):
            e = st.entries.add(line=rnd.choice(["", "plain line", "ünïcødé ✓", "x" * rnd.randrange(300)]))
            t = random_time(rnd) if rnd.random() < (0.3 if window else 0.0) else divmod(NOW - rnd.randrange(DAY), S)
            if t is not None:
                e.timestamp.seconds, e.timestamp.nanos = t
            for i in range(rnd.choice([0, 0, 1, 2])):
                e.structuredMetadata.add(name=f"k{i}", value=rnd.choice(["", "v", "трасса"]))
    return snappy.compress(req.SerializeToString())


def both(body: bytes, tenant: str = "") -> tuple[tuple[Decoded, Outcome], tuple[Decoded, Outcome]]:
    """(decoded, outcome) by the full path and by the pass-through path, fresh caches each."""
    got = []
    for dec in (PushDecoder(), PushDecoder(pass_through=True)):
        d = dec.protobuf(body, LIMIT)
        got.append((d, passing().process(d.streams, tenant, NOW, d.times)))
    return got[0], got[1]


def is_raw(d: Decoded) -> bool:
    return all(s.entries.DESCRIPTOR.name == "StreamRaw" for s in d.streams)


def test_the_processor_says_when_it_passes_entries_through() -> None:
    assert passing().passes_entries_through
    assert not passing(use_incoming_timestamp=False).passes_entries_through
    assert not passing(stages=[{"labels": {"app": None}}]).passes_entries_through
    assert not passing({"max_line_size": 100}).passes_entries_through


@pytest.mark.parametrize("window", [True, False], ids=["mixed-times", "inside-window"])
def test_random_requests_come_out_as_by_the_full_path(window: bool) -> None:
    rnd = random.Random(8 + window)
    seen = {"times": 0, "no_times": 0, "dropped": 0, "errors": 0, "invalid": 0, "chunks": 0}
    for _ in range(400):
        body = random_request(rnd, window)
        tenant = rnd.choice(["", "t1"])
        (d_full, o_full), (d_fast, o_fast) = both(body, tenant)
        assert (is_raw(d_fast) and not is_raw(d_full)) or not d_fast.streams
        assert d_full.times is None
        assert (d_fast.errors, d_fast.invalid_entries, d_fast.invalid_bytes) == \
            (d_full.errors, d_full.invalid_entries, d_full.invalid_bytes)
        assert o_fast == o_full  # chunks (labels, bytes, count, size), counts, drops, errors
        seen["times" if d_fast.times is not None else "no_times"] += 1
        seen["dropped"] += bool(o_full.dropped)
        seen["errors"] += bool(o_full.errors)
        seen["invalid"] += bool(d_full.invalid_entries)
        seen["chunks"] += bool(o_full.chunks)
    assert all(seen.values()), seen  # every case was exercised


def test_chunk_bytes_are_those_of_the_full_serialization() -> None:
    rnd = random.Random(3)
    body = random_request(rnd, window=False)
    while not PushDecoder().protobuf(body, LIMIT).streams:
        body = random_request(rnd, window=False)
    (_, o_full), (d_fast, o_fast) = both(body)
    assert d_fast.times is not None and is_raw(d_fast)
    for chunks in o_fast.chunks.values():
        for c in chunks:
            msg = StreamAdapter.FromString(c.data)
            assert msg.SerializeToString() == c.data and c.count == len(msg.entries)
    assert o_fast.chunks == o_full.chunks


# ---- time bounds ------------------------------------------------------------------------------


def request(*streams: list[tuple[int, int] | None]) -> bytes:
    req = PushRequest()
    for i, times in enumerate(streams):
        st = req.streams.add(labels=f'{{app="s{i}"}}')
        for t in times:
            e = st.entries.add(line="l")
            if t is not None:
                e.timestamp.seconds, e.timestamp.nanos = t
    return snappy.compress(req.SerializeToString())


def test_bounds_of_a_request_inside_the_window_are_whole_seconds() -> None:
    a, b, c = divmod(NOW - DAY, S), divmod(NOW, S), divmod(NOW - 5 * S, S)
    d = PushDecoder(pass_through=True).protobuf(request([a, b], [c]), LIMIT)
    assert d.times == (a[0] * S, b[0] * S + S - 1)
    assert passing().window.inside(d.times, NOW)  # type: ignore[union-attr]


@pytest.mark.parametrize("odd", [None, (0, 0), (0, 700)], ids=["no-timestamp", "epoch", "second-0"])
def test_an_entry_whose_seconds_are_not_encoded_leaves_the_bounds_to_the_exact_check(odd: Any) -> None:
    body = request([divmod(NOW, S)], [odd, divmod(NOW - 1, S)])
    d = PushDecoder(pass_through=True).protobuf(body, LIMIT)
    assert d.times is None and is_raw(d)
    out = passing().process(d.streams, "", NOW, d.times)
    assert dict(out.dropped) == {"too_old": 1} and out.entries == 2
    assert "entry for stream '{app=\"s1\"}' has timestamp too old: 1970-01-01T00:00:00Z" in out.errors[0]


def test_old_and_new_entries_are_still_dropped_with_lokis_messages() -> None:
    body = request([divmod(NOW - 8 * DAY, S), divmod(NOW, S)], [divmod(NOW + 3600 * S, S)])
    d = PushDecoder(pass_through=True).protobuf(body, LIMIT)
    assert d.times is not None and not passing().window.inside(d.times, NOW)  # type: ignore[union-attr]
    out = passing().process(d.streams, "", NOW, d.times)
    assert dict(out.dropped) == {"too_old": 1, "too_far_in_future": 1} and out.entries == 1
    assert out.errors == [
        "entry for stream '{app=\"s0\"}' has timestamp too old: 2026-05-20T20:26:40Z, "
        "oldest acceptable timestamp is: 2026-05-21T20:26:40Z",
        "entry for stream '{app=\"s1\"}' has timestamp too new: 2026-05-28T21:26:40Z"]


# ---- what upb refuses -------------------------------------------------------------------------


def ld(field: int, payload: bytes) -> bytes:
    return length_delimited(field, payload)


def entry(line: bytes = b"ok", name: bytes = b"k", value: bytes = b"v", seconds: int = NOW // S) -> bytes:
    return ld(1, b"\x08" + varint(seconds)) + ld(2, line) + ld(3, ld(1, name) + ld(2, value))


def push(labels: bytes, *entries: bytes) -> bytes:
    good = ld(1, ld(1, b'{app="fine"}') + ld(2, entry()))
    return snappy.compress(good + ld(1, ld(1, labels) + b"".join(ld(2, e) for e in entries)))


INVALID_UTF8 = {
    "line": push(b'{app="a"}', entry(), entry(line=b"bad \xff line")),
    "label value": push(b'{app="\xc3"}', entry()),
    "metadata name": push(b'{app="a"}', entry(name=b"\xed\xa0\x80")),  # a surrogate, in UTF-8's form
    "metadata value": push(b'{app="a"}', entry(value=b"\xfe")),
}


def refusal(decoder: PushDecoder, body: bytes) -> str:
    with pytest.raises(BadRequest) as e:
        decoder.protobuf(body, LIMIT)
    return str(e.value)


@pytest.mark.parametrize("where", list(INVALID_UTF8))
def test_invalid_utf8_is_refused_in_the_same_words(where: str) -> None:
    body = INVALID_UTF8[where]
    said = refusal(PushDecoder(pass_through=True), body)
    assert said == refusal(PushDecoder(), body)
    assert said.startswith("invalid protobuf PushRequest: ") and "UTF-8" in said


def test_a_corrupt_body_is_refused_in_the_same_words() -> None:
    body = snappy.compress(ld(1, ld(2, entry())[:-3]))
    assert refusal(PushDecoder(pass_through=True), body) == refusal(PushDecoder(), body)


def test_seconds_the_views_cannot_read_take_the_full_path_and_are_checked_closely() -> None:
    # A Timestamp whose field 1 comes length-delimited: the full parse keeps it as an unknown field,
    # the views read it as packed seconds (here corrupt ones). Neither may cost a 500.
    odd = ld(1, ld(1, b"\x85\x86")) + ld(2, b"odd")
    body = snappy.compress(ld(1, ld(1, b'{app="a"}') + ld(2, odd) + ld(2, entry())))
    (_, o_full), (d_fast, o_fast) = both(body)
    assert not is_raw(d_fast) and o_fast == o_full
    assert dict(o_full.dropped) == {"too_old": 1} and o_full.entries == 1


# ---- over HTTP --------------------------------------------------------------------------------


@pytest.fixture
def relay() -> Iterator[tuple[InProcessRelay, Loki]]:
    loki = Loki()
    cfg = push_config("http://loki.invalid/loki/api/v1/push", 0, use_incoming_timestamp=True)
    r = InProcessRelay(cfg, loki)
    yield r, loki
    r.close()


def test_the_push_route_passes_entries_through_and_refuses_invalid_utf8(
        relay: tuple[InProcessRelay, Loki], monkeypatch: pytest.MonkeyPatch) -> None:
    r, loki = relay
    calls: list[int] = []
    encoded = PushDecoder._encoded

    def spy(self: PushDecoder, data: bytes) -> Decoded:
        calls.append(len(data))
        return encoded(self, data)

    monkeypatch.setattr(PushDecoder, "_encoded", spy)
    headers = {"Content-Type": "application/x-protobuf"}
    for where, body in INVALID_UTF8.items():
        resp = r.post("push", "/loki/api/v1/push", body, headers)
        assert resp.status_code == 400, where
        assert resp.text == refusal(PushDecoder(), body) + "\n"
    now = time.time_ns() // S
    good = request([(now, 1), (now, 2)], [(now - 60, 0)])
    assert r.post("push", "/loki/api/v1/push", good, headers).status_code == 204
    got = loki.wait_for(3)
    assert sorted((e["labels"]["app"], e["ts"]) for e in got) == [
        ("s0", now * S + 1), ("s0", now * S + 2), ("s1", (now - 60) * S)]
    assert len(calls) == len(INVALID_UTF8) + 1  # the route's decoder took the pass-through path
