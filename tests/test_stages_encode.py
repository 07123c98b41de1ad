"""relay.pipeline.encode writes what upb writes for the same entries."""

from __future__ import annotations

from relay.pipeline.encode import encode_entries
from relay.pipeline.stages.base import Entry
from relay.proto import StreamAdapter

NS = 1_000_000_000


def upb(entries: list[Entry]) -> bytes:
    msg = StreamAdapter()
    for e in entries:
        pe = msg.entries.add(line=e.line)
        pe.timestamp.seconds, pe.timestamp.nanos = divmod(e.timestamp, NS)
        for name, value in e.metadata.items():
            pe.structuredMetadata.add(name=name, value=value)
    return msg.SerializeToString()


def entry(ts: int, line: str, **metadata: str) -> Entry:
    return Entry({}, line, ts, {}, metadata)


def test_same_bytes_as_upb() -> None:
    entries = [
        entry(1_700_000_000 * NS + 123_456_789, "plain"),
        entry(1_700_000_000 * NS + 123_456_790, "same second", request_id="abc"),
        entry(0, ""),  # the epoch, an empty line
        entry(5, "nanoseconds only"),
        entry(-1, "just before the epoch"),
        entry(-(2**63), "int64 minimum"),
        entry(2**63 - 1, "int64 maximum"),
        entry(NS + 16_383, "x"), entry(NS + 16_384, "y"), entry(NS + 999_999_999, "z"),
        entry(2 * NS, "é ✓ 𝄞 unicode", **{"": "empty name", "empty_value": "", "ü": "ß"}),
        entry(3 * NS, "long " * 5000, big="v" * 20_000),
        entry(4 * NS, "many", a="1", b="2", c="3"),
        *(entry(5 * NS, "s" * size, m="v" * size) for size in (127, 128, 4093, 4094, 4095, 4096, 16383, 16384)),
    ]
    data, n, refused = encode_entries(entries)
    assert (n, refused) == (len(entries), [])
    assert data == upb(entries)
    assert [e.line for e in StreamAdapter.FromString(data).entries] == [e.line for e in entries]


def test_refused_entries_are_left_out_alone() -> None:
    good = [entry(NS, "a"), entry(2 * NS, "c", k="v")]
    bad = [entry(NS, "lone \ud800"), entry(NS, "meta", k="\udfff"), entry(NS, "not text", k=5)]  # type: ignore[arg-type]
    data, n, refused = encode_entries([good[0], *bad, good[1]])
    assert (n, refused) == (2, bad)
    assert data == upb(good)
