"""A unit of work: one S3 object or one CloudWatch time window, read chunk by chunk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .deps import Labels
from .stamps import Apart, Entries, keep_apart

Parts = list[tuple[Labels, Entries]]


class Reader(Protocol):
    @property
    def bytes(self) -> int: ...  # bytes read so far (decompressed)

    def next_chunk(self) -> Parts | None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class Unit:
    id: str  # checkpoint key: the S3 key, or the CloudWatch window
    name: str  # for people: s3://bucket/key, or the window's times
    size: int  # stored bytes (for the ETA); 0 when unknown
    # The earliest time its entries may have: only a unit with oldest_ns before Loki's age limit
    # can hold entries Loki would refuse. 0 when nothing is known.
    oldest_ns: int
    open: Callable[[], Reader]  # blocking
    log_type: str = ""
    dated: bool = True


class Streams:
    """Per-stream state of one unit's entries across its chunks (equal times kept apart)."""

    def __init__(self) -> None:
        self.apart: dict[tuple[tuple[str, str], ...], Apart] = {}

    def entries(self, labels: Labels, entries: Entries) -> Entries:
        """The entries with their final times (before the age policy), as they will be sent."""
        key = tuple(labels.items())
        state = self.apart.get(key)
        if state is None:
            state = self.apart[key] = Apart()
        return keep_apart(entries, state)


def read_all(unit: Unit, each: Callable[[Labels, Entries], Any]) -> int:
    """Read a whole unit, calling each(labels, entries) with the final times; bytes read. Blocking."""
    reader = unit.open()
    streams = Streams()
    try:
        while (parts := reader.next_chunk()) is not None:
            for labels, entries in parts:
                each(labels, streams.entries(labels, entries))
        return reader.bytes
    finally:
        reader.close()
