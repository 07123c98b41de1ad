"""Batches of processed chunks, encoded as Loki push requests.

A chunk's entries are already protobuf; a batch only frames each chunk as a
`StreamAdapter` (label field + entries) and snappy-compresses the whole.
Loki accepts several streams with the same labels in one request.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import snappy

from ..cache import BoundedCache
from ..model import Chunk, format_labels, parse_labels
from ..proto import length_delimited, varint

STREAMS_FIELD = b"\x0a"  # PushRequest.streams = 1, length-delimited


class LabelEncoder:
    """Label text -> encoded StreamAdapter.labels field, with a client's external labels merged in."""

    def __init__(self, external: Mapping[str, str]) -> None:
        self.external = dict(external)
        self._cache: BoundedCache[str, bytes] = BoundedCache()

    def field(self, labels: str) -> bytes:
        f = self._cache.get(labels)
        if f is None:
            text = labels
            if self.external:
                # The entry's own labels win over external ones, as in Promtail.
                text = format_labels({**self.external, **parse_labels(labels)})
            f = self._cache.put(labels, length_delimited(1, text.encode()))
        return f


def encode_push(chunks: list[Chunk], labels: LabelEncoder) -> bytes:
    """An uncompressed PushRequest holding every chunk as its own stream."""
    parts: list[bytes] = []
    field = labels.field
    for c in chunks:
        lf = field(c.labels)
        n = len(lf) + c.size
        parts += (STREAMS_FIELD, _VARINTS[n] if n < _SMALL else varint(n), lf, c.data)
    return b"".join(parts)


_SMALL = 1 << 14
_VARINTS = [varint(n) for n in range(_SMALL)]  # the length prefixes of most streams, ready made


def compress(raw: bytes) -> bytes:
    return bytes(snappy.compress(raw))


class Pending:
    """Chunks waiting for one (client, tenant): a FIFO with running totals."""

    __slots__ = ("bytes", "chunks", "entries", "first_at")

    def __init__(self) -> None:
        self.chunks: deque[Chunk] = deque()
        self.entries = 0
        self.bytes = 0
        self.first_at = 0.0  # monotonic time the oldest waiting chunk arrived

    def extend(self, chunks: list[Chunk], entries: int, size: int, now: float) -> None:
        if not self.chunks:
            self.first_at = now
        self.chunks.extend(chunks)
        self.entries += entries
        self.bytes += size

    def take(self, max_bytes: int) -> list[Chunk]:
        """Up to max_bytes of chunks from the front (always at least one)."""
        q = self.chunks
        if self.bytes <= max_bytes:  # all of it: no per-chunk work
            everything = list(q)
            q.clear()
            self.entries = self.bytes = 0
            return everything
        out: list[Chunk] = []
        size = 0
        while q and (not out or size + q[0].size <= max_bytes):
            c = q.popleft()
            out.append(c)
            size += c.size
            self.entries -= c.count
            self.bytes -= c.size
        # What is left stays as old as it is: it goes out in the next batch without a new wait.
        return out
