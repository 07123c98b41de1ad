"""Pipeline entries to Loki's wire form: `StreamAdapter.entries` (field 2) as bytes, written directly.

Building upb messages costs a Python object per entry, its timestamp and each structured-metadata
pair; this writes the same bytes with table lookups (about a third less CPU, half with metadata):

    EntryAdapter     { Timestamp timestamp = 1; string line = 2; repeated LabelPairAdapter structuredMetadata = 3; }
    Timestamp        { int64 seconds = 1; int32 nanos = 2; }
    LabelPairAdapter { string name = 1; string value = 2; }
"""

from __future__ import annotations

from .stages.base import Entry

NS = 1_000_000_000
_INT64 = 1 << 63
_UINT64 = (1 << 64) - 1


def varint(n: int) -> bytes:
    """A protobuf varint; a negative int64 is written as its 64-bit two's complement (10 bytes)."""
    n &= _UINT64
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


SMALL = 1 << 14  # lengths below this are a table lookup (one or two bytes)
_SMALL = [varint(n) for n in range(SMALL)]
# Nanoseconds (< 10^9, 30 bits) as two lookups: the low 14 bits with the continuation bit set on
# both bytes, then the varint of the rest (at most 61,036 values).
_LOW14 = [bytes(((n & 0x7F) | 0x80, (n >> 7) | 0x80)) for n in range(SMALL)]
_HIGH = [varint(n) for n in range((NS >> 14) + 1)]


def encode_entries(entries: list[Entry]) -> tuple[bytes, int, list[Entry]]:
    """(bytes, entries written, entries refused): a line or metadata that is not valid UTF-8 text
    (a lone surrogate) or a time outside int64 seconds cannot be written."""
    small, low14, high = _SMALL, _LOW14, _HIGH
    seconds_field: dict[int, bytes] = {}  # neighbours share their second
    name_field: dict[str, bytes] = {}
    parts: list[bytes] = []
    append = parts.append
    refused: list[Entry] = []
    # Lengths below SMALL are looked up inline: a function call per field would cost more.
    for e in entries:
        try:
            s, n = divmod(e.timestamp, NS)
            ts = seconds_field.get(s)
            if ts is None:
                if not -_INT64 <= s < _INT64:
                    raise ValueError("timestamp out of range")
                ts = seconds_field[s] = b"\x08" + varint(s) if s else b""
            if n:
                ts += b"\x10" + (small[n] if n < SMALL else low14[n & 0x3FFF] + high[n >> 14])
            line = e.line.encode()
            body = b"\x0a" + small[len(ts)] + ts
            if line:  # proto3 leaves empty strings out
                size = len(line)
                body += b"\x12" + (small[size] if size < SMALL else varint(size)) + line
            metadata = e.metadata
            if metadata:
                for name, value in metadata.items():
                    prefix = name_field.get(name)
                    if prefix is None:
                        raw = name.encode()
                        prefix = name_field[name] = b"\x0a" + varint(len(raw)) + raw if raw else b""
                    raw = value.encode()
                    if raw:
                        size = len(raw)
                        pair = prefix + b"\x12" + (small[size] if size < SMALL else varint(size)) + raw
                    else:
                        pair = prefix
                    size = len(pair)
                    body += b"\x1a" + (small[size] if size < SMALL else varint(size)) + pair
        except (ValueError, TypeError, AttributeError):  # UnicodeEncodeError is a ValueError
            refused.append(e)
            continue
        size = len(body)
        append(b"\x12" + (small[size] if size < SMALL else varint(size)) + body)
    return b"".join(parts), len(parts), refused
