"""Loki's push wire format (`logproto.PushRequest`), described at import time.

The schema is built from a FileDescriptorProto so no protoc step is needed; the
message classes come from the installed protobuf runtime (upb, in C).

    PushRequest   { repeated StreamAdapter streams = 1; }
    StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
    EntryAdapter  { Timestamp timestamp = 1; string line = 2;
                    repeated LabelPairAdapter structuredMetadata = 3; }
    LabelPairAdapter { string name = 1; string value = 2; }
"""

from __future__ import annotations

from typing import Any

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    timestamp_pb2,  # noqa: F401  registers timestamp.proto in the pool
)

_FILE = "loki_relay/logproto.proto"
_PKG = "lokirelay.logproto"


def _describe() -> descriptor_pb2.FileDescriptorProto:
    f = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name=_FILE, package=_PKG, syntax="proto3")
    file.dependency.append("google/protobuf/timestamp.proto")

    def message(name: str, *fields: tuple[int, str, int, str | None, bool]) -> None:
        m = file.message_type.add(name=name)
        for number, fname, ftype, type_name, repeated in fields:
            fld = m.field.add(name=fname, number=number, type=ftype)
            fld.label = f.LABEL_REPEATED if repeated else f.LABEL_OPTIONAL
            if type_name:
                fld.type_name = type_name

    message("LabelPairAdapter", (1, "name", f.TYPE_STRING, None, False), (2, "value", f.TYPE_STRING, None, False))
    message(
        "EntryAdapter",
        (1, "timestamp", f.TYPE_MESSAGE, ".google.protobuf.Timestamp", False),
        (2, "line", f.TYPE_STRING, None, False),
        (3, "structuredMetadata", f.TYPE_MESSAGE, f".{_PKG}.LabelPairAdapter", True),
    )
    message(
        "StreamAdapter",
        (1, "labels", f.TYPE_STRING, None, False),
        (2, "entries", f.TYPE_MESSAGE, f".{_PKG}.EntryAdapter", True),
        (3, "hash", f.TYPE_UINT64, None, False),
    )
    message("PushRequest", (1, "streams", f.TYPE_MESSAGE, f".{_PKG}.StreamAdapter", True))
    # A view of StreamAdapter's bytes for reading every entry's seconds at once (relay.pipeline.limits):
    # `entries` and `timestamp` are singular here, so the parser merges all entries into one message
    # and appends each entry's seconds to one repeated field. A seconds of 0 is not encoded, so
    # entries at second 0 (or without a time) are missing from it.
    message("TimesView", (1, "seconds", f.TYPE_INT64, None, True), (2, "nanos", f.TYPE_INT32, None, False))
    message(
        "EntryTimesView",
        (1, "timestamp", f.TYPE_MESSAGE, f".{_PKG}.TimesView", False),
        (2, "line", f.TYPE_BYTES, None, False),  # declared (not left unknown): parsing is then cheaper
        (3, "structuredMetadata", f.TYPE_BYTES, None, False),
    )
    message("StreamTimes", (2, "entries", f.TYPE_MESSAGE, f".{_PKG}.EntryTimesView", False))
    # For jobs that pass entries through unchanged (relay.sources.push): PushRaw keeps each entry as
    # its encoded bytes, so no entry message is built and serializing a stream gives its bytes back.
    message(
        "StreamRaw",
        (1, "labels", f.TYPE_STRING, None, False),
        (2, "entries", f.TYPE_BYTES, None, True),
        (3, "hash", f.TYPE_UINT64, None, False),
    )
    message("PushRaw", (1, "streams", f.TYPE_MESSAGE, f".{_PKG}.StreamRaw", True))
    # ... and PushTimes reads the same bytes with every stream and entry merged into one message, as
    # StreamTimes does: the seconds of every entry, and the UTF-8 checks of the full parse (strings
    # are declared as strings; upb checks each one it reads, even one it then overwrites).
    message("LabelPairView", (1, "name", f.TYPE_STRING, None, False), (2, "value", f.TYPE_STRING, None, False))
    message(
        "EntryCheckView",
        (1, "timestamp", f.TYPE_MESSAGE, f".{_PKG}.TimesView", False),
        (2, "line", f.TYPE_STRING, None, False),
        (3, "structuredMetadata", f.TYPE_MESSAGE, f".{_PKG}.LabelPairView", False),
    )
    message(
        "StreamCheckView",
        (1, "labels", f.TYPE_STRING, None, False),
        (2, "entries", f.TYPE_MESSAGE, f".{_PKG}.EntryCheckView", False),
        (3, "hash", f.TYPE_UINT64, None, False),
    )
    message("PushTimes", (1, "streams", f.TYPE_MESSAGE, f".{_PKG}.StreamCheckView", False))
    # ... and PushCount merges the streams only: every entry of the request in one list, so its
    # length is the request's entry count without a Python step per stream.
    message("StreamCount", (2, "entries", f.TYPE_BYTES, None, True))
    message("PushCount", (1, "streams", f.TYPE_MESSAGE, f".{_PKG}.StreamCount", False))
    return file


def _load() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_FILE)
    except KeyError:
        pool.Add(_describe())
    return pool


_pool = _load()


def _cls(name: str) -> Any:
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{_PKG}.{name}"))


PushRequest = _cls("PushRequest")
StreamAdapter = _cls("StreamAdapter")
StreamTimes = _cls("StreamTimes")
PushRaw = _cls("PushRaw")
PushTimes = _cls("PushTimes")
PushCount = _cls("PushCount")


def seconds_bounds(seconds: Any, count: int) -> tuple[int, int] | None:
    """The earliest and latest time (Unix ns) that `count` entries can have, from their seconds as
    a times view lists them (TimesView.seconds); None when there are none, or when some entry's
    seconds are missing (0, or no time at all: not encoded)."""
    if not count or len(seconds) != count:
        return None
    unique = set(seconds[:])  # entries share few seconds; a list is quicker to read than the container
    return min(unique) * 1_000_000_000, max(unique) * 1_000_000_000 + 999_999_999


def varint(n: int) -> bytes:
    """A protobuf varint; a negative int64 is written as its 64-bit two's complement (10 bytes)."""
    n &= 0xFFFF_FFFF_FFFF_FFFF
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def length_delimited(field: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload
