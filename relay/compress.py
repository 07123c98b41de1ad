"""Bounded decompression, shared by HTTP bodies and AWS payloads: no decompression bombs."""

from __future__ import annotations

import zlib

GZIP_MAGIC = b"\x1f\x8b"


def decompress_bounded(data: bytes, wbits: int, limit: int) -> bytes:
    """zlib/gzip/raw deflate, never producing more than `limit` bytes.

    Raises zlib.error for corrupt data, OverflowError over the limit, EOFError when truncated.
    """
    d = zlib.decompressobj(wbits=wbits)
    out = d.decompress(data, limit + 1)
    if len(out) > limit or d.unconsumed_tail:
        raise OverflowError(f"decompressed size exceeds {limit} bytes")
    if not d.eof:
        raise EOFError("truncated data")
    return out


class BudgetExceeded(Exception):
    """The payloads of one request together decompress to more than its limit."""


class Budget:
    """What the payloads inside one request (Kinesis records, Firehose records, embedded
    CloudWatch data ...) may decompress to: each at most `limit` bytes, and all of them
    together at most `limit` too, the same limit as the request's body. Without the running
    total, a few MB of records each just under the limit would expand to gigabytes."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def decompress(self, data: bytes, wbits: int) -> bytes:
        """As decompress_bounded, counted. Raises OverflowError when this payload alone is over
        the limit, BudgetExceeded when it does not fit in what the request has left."""
        cap = min(self.limit, self.left)
        try:
            out = decompress_bounded(data, wbits, cap)
        except OverflowError:
            if cap < self.limit:
                raise BudgetExceeded(
                    f"the payloads of this request decompress to more than {self.limit} bytes in total"
                ) from None
            raise
        self.left -= len(out)
        return out
