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
