"""The data that flows from sources through processing to sinks.

A source turns request bytes into `Stream`s: a label set plus a protobuf
`StreamAdapter` carrying the entries. Processing (relabel, static labels,
timestamps) turns each surviving stream into a `Chunk`: the final label text and
the entries already encoded as protobuf, so sinks only concatenate bytes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NamedTuple

import orjson

from .proto import StreamAdapter

Labels = dict[str, str]

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TENANT_LABEL = "__tenant_id__"  # Promtail's reserved label: the entries' tenant


@dataclass(slots=True)
class Stream:
    """One label set and its entries, as a source decoded them."""

    labels: Labels
    entries: Any  # StreamAdapter (or StreamRaw, entries still encoded); its `labels` and `hash` are not used
    key: str | None = None  # the source's raw label text: a cheaper cache key than the dict


class Chunk(NamedTuple):
    """A processed stream, ready to batch: label text plus encoded entries.

    A tuple of str/bytes/int, so the garbage collector stops tracking it: queues of
    millions of chunks then cost nothing per collection.
    """

    labels: str  # Loki label text, e.g. {job="x", level="info"}
    data: bytes  # StreamAdapter fields 2 (entries), encoded
    count: int  # type: ignore[assignment]  # entries (a field may shadow tuple.count: nothing calls it)
    size: int  # len(data)


# Field getters that run in C: sum(map(CHUNK_SIZE, chunks)) instead of a Python loop.
CHUNK_COUNT = itemgetter(2)
CHUNK_SIZE = itemgetter(3)

# What a queued chunk costs beyond its data: the tuple, the bytes object's header, its ints and
# a queue slot (measured ~120-150 bytes on CPython 3.11), with room for allocator slack. Memory
# limits count it, so many tiny streams cannot hold many times the limit.
CHUNK_OVERHEAD = 200


def held_size(chunks: list[Chunk]) -> int:
    """The memory `chunks` take while queued, as the buffer limits count it."""
    encoded: int = sum(map(CHUNK_SIZE, chunks))
    return encoded + CHUNK_OVERHEAD * len(chunks)


class LabelError(ValueError):
    pass


def pb_entries(pairs: Iterable[tuple[int, str]]) -> list[dict[str, Any]]:
    """(unix nanoseconds, line) pairs in the dict form of protobuf `EntryAdapter`s, which upb reads in C."""
    return [{"timestamp": {"seconds": ts // 1_000_000_000, "nanos": ts % 1_000_000_000}, "line": line}
            for ts, line in pairs]


def new_stream(labels: Labels, entries: Iterable[tuple[int, str]], key: str | None = None) -> Stream:
    """Build a stream from (unix nanoseconds, line) pairs.

    A timestamp outside int64 nanoseconds (a hostile or broken event) becomes the current time
    rather than failing the whole request.
    """
    pairs = entries if isinstance(entries, list) else list(entries)
    try:
        msg = StreamAdapter(entries=pb_entries(pairs))
    except ValueError:
        now = time.time_ns()
        msg = StreamAdapter(entries=pb_entries([(ts if 0 <= ts < INT64 else now, line) for ts, line in pairs]))
    return Stream(labels, msg, key)


def known_times(times: tuple[int, int] | None) -> tuple[int, int] | None:
    """`times` (earliest, latest; Unix ns) as streams made by new_stream will hold them: it
    replaces a time outside int64 ns with the current time, and then they are not known."""
    return times if times is not None and times[0] >= 0 and times[1] < INT64 else None


def new_streams(labels: Labels, entries: list[tuple[int, str]], most: int = 10_000) -> list[Stream]:
    """Like new_stream, as streams of at most `most` entries each (in order, same labels).

    Building one protobuf message of a million entries is one C call that holds the GIL for
    a second, and processing it is one uninterrupted step: in slices, a worker thread decoding
    a huge event leaves the event loop room to run, and processing yields between them."""
    return _sliced(new_stream, labels, entries, most)


def new_streams_ms(labels: Labels, events: list[tuple[int, str]], most: int = 10_000) -> list[Stream]:
    """Like new_streams, from (unix milliseconds, line) pairs, as CloudWatch Logs events carry
    them: the entries are made straight from the milliseconds, with no list of nanosecond pairs
    in between (a tuple and a big-int product less per entry)."""
    return _sliced(_stream_ms, labels, events, most)


def _sliced(build: Callable[[Labels, list[tuple[int, str]]], Stream], labels: Labels,
            items: list[tuple[int, str]], most: int) -> list[Stream]:
    """`build` over slices of at most `most` items, each slice its own copy of the labels."""
    if len(items) <= most:
        return [build(labels, items)]
    return [build(labels if i == 0 else dict(labels), items[i : i + most]) for i in range(0, len(items), most)]


def _stream_ms(labels: Labels, events: list[tuple[int, str]]) -> Stream:
    try:
        msg = StreamAdapter(entries=[
            {"timestamp": {"seconds": ms // 1000, "nanos": ms % 1000 * 1_000_000}, "line": line} for ms, line in events])
    except ValueError:  # a time beyond int64 seconds: new_stream's rule for it
        return new_stream(labels, [(ms * 1_000_000, line) for ms, line in events])
    return Stream(labels, msg)


INT64 = 1 << 63  # Loki's timestamps are int64 nanoseconds


def format_labels(labels: Mapping[str, str]) -> str:
    """Loki's label text: names sorted, values as Go string literals.

    A JSON string is also a valid Go string literal (\\uXXXX, \\n, \\" ...), so orjson quotes.
    """
    return "{" + ", ".join(f"{k}={orjson.dumps(labels[k]).decode()}" for k in sorted(labels)) + "}"


_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)', re.S)
_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.S)


def _unescape(value: str) -> str:
    def one(m: re.Match[str]) -> str:
        s = m.group(1)
        if s[0] in "uU":
            cp = int(s[1:], 16)
            # Go refuses code points beyond Unicode and surrogate halves; so does Loki.
            if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
                raise LabelError(f"invalid escape \\{s}: not a Unicode code point")
            return chr(cp)
        if s[0] == "x":
            return chr(int(s[1:], 16))
        if s[0] in "01234567":
            return chr(int(s, 8))
        if s in _GO_ESCAPES:
            return _GO_ESCAPES[s]
        raise LabelError(f"invalid escape \\{s}")

    return _ESCAPE.sub(one, value) if "\\" in value else value


def parse_labels(text: str) -> Labels:
    """Parse Loki label text such as {a="b", c="d\\n"}; raises LabelError."""
    s = text.strip()
    if len(s) < 2 or s[0] != "{" or s[-1] != "}":
        raise LabelError(f"labels must be of the form {{name=\"value\", ...}}: {text[:200]!r}")
    body = s[1:-1]
    labels: Labels = {}
    pos = 0
    while pos < len(body):
        if not body[pos:].strip():
            break
        m = _PAIR.match(body, pos)
        if m is None:
            raise LabelError(f"cannot parse labels at offset {pos + 1}: {text[:200]!r}")
        name = m.group(1)
        if name in labels:
            raise LabelError(f"duplicate label name {name!r}: {text[:200]!r}")
        labels[name] = _unescape(m.group(2))
        pos = m.end()
    return labels
