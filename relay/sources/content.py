"""Request bodies, without HTTP: Content-Encoding, snappy, size limits, and the errors a decoder raises.

Plain functions (bytes in, bytes out); the HTTP layer maps the errors to 400 and 413."""

from __future__ import annotations

import zlib

import snappy

from ..compress import decompress_bounded


class BodyTooLarge(Exception):
    """Over the size limit, before or after decompression (answer 413)."""


class BadRequest(ValueError):
    """Malformed input (answer 400 with this message)."""


def inflate(data: bytes, wbits: int, limit: int, what: str) -> bytes:
    try:
        return decompress_bounded(data, wbits, limit)
    except zlib.error as e:
        raise BadRequest(f"invalid {what} data: {e}") from None
    except OverflowError:
        raise BodyTooLarge(f"decompressed body exceeds the limit of {limit} bytes") from None
    except EOFError:
        raise BadRequest(f"truncated {what} data") from None


def decode_content(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo Content-Encoding as Loki does: none, gzip, deflate; `snappy` passes through."""
    enc = encoding.strip().lower()
    if enc in ("", "identity", "snappy"):  # snappy bodies are unwrapped by the protobuf decoder
        return body
    if enc == "gzip":
        return inflate(body, 31, limit, "gzip")
    if enc == "deflate":
        # RFC 9110 deflate is zlib-wrapped; Go's (and so Loki's) reader takes raw deflate. Accept both.
        zlib_header = len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
        return inflate(body, 15 if zlib_header else -15, limit, "deflate")
    raise BadRequest(f"Content-Encoding {encoding!r} not supported")


def snappy_length(data: bytes) -> int | None:
    """The uncompressed size a snappy block declares, None when its preamble is bad."""
    size = shift = 0
    for b in data[:10]:
        size |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return size
    return None


# Bodies that may take more than about 10 ms to decode are decoded in a worker thread, so
# the event loop keeps serving other requests; smaller ones are decoded in place, where the
# thread hop would cost more than it saves (measured: 64 KiB made JSON pushes 20% dearer).
HEAVY_BYTES = 1 << 20
HEAVY_COMPRESSED_BYTES = 16 << 10  # gzip and deflate: the ratio is unknown until decoded


def heavy(body: bytes, encoding: str) -> bool:
    """Whether decoding `body` may take long: big, or compressed to what may be big."""
    if len(body) >= HEAVY_BYTES:
        return True
    enc = encoding.strip().lower()
    if enc in ("gzip", "deflate", "x-gzip"):
        return len(body) >= HEAVY_COMPRESSED_BYTES
    size = snappy_length(body)  # a protobuf push; for JSON any number (or None) will do
    return size is not None and size >= HEAVY_BYTES


def snappy_block(data: bytes, limit: int) -> bytes:
    """Snappy block format, refusing (413) a declared size over `limit` before decoding."""
    size = snappy_length(data)
    if size is None:
        raise BadRequest("invalid snappy data: bad length preamble")
    if size > limit:
        raise BodyTooLarge(f"decompressed body of {size} bytes exceeds the limit of {limit} bytes")
    try:
        return bytes(snappy.uncompress(data))
    except Exception as e:  # python-snappy raises several types for corrupt input
        raise BadRequest(f"invalid snappy data: {e}") from None


def first_errors(errors: list[str], sep: str, most: int = 10) -> str:
    """The first `most` error messages joined, and how many more there were."""
    more = f" (and {len(errors) - most} more)" if len(errors) > most else ""
    return sep.join(errors[:most]) + more
