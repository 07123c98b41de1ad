"""A bounded cache for per-label-set work: a dict that empties itself when full.

Label sets repeat, so a cache of a few tens of thousands of them holds a relay's whole
working set; a sender that makes up new label sets without end only ever costs one
clear. Clearing wholesale, rather than evicting one at a time, keeps a hit a plain C
`dict.get`: no bookkeeping on the hot path.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

DEFAULT_SIZE = 50_000


class BoundedCache(dict[K, V]):
    """Look up with `get`; add with `put`, which clears everything first when the cache is full."""

    __slots__ = ("size",)

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        super().__init__()
        self.size = size

    def put(self, key: K, value: V) -> V:
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value
