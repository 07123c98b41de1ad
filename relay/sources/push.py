"""Loki's push API bodies, decoded: plain functions and a label cache, no web framework.

`decode(body, content_type, content_encoding, ...)` follows Loki's rules: `application/json`
(any parameters) is JSON (the legacy `/api/prom/push` shape when `legacy`), any other
content type is a snappy-compressed `logproto.PushRequest`, and a missing content type is
refused. One invalid stream does not cost the others. `raw_lines` is Promtail's raw
endpoint. The routes are in `relay.sources.http.push`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError

from ..cache import BoundedCache
from ..model import INT64, LabelError, Labels, Stream, new_stream, parse_labels
from ..proto import PushCount, PushRaw, PushRequest, PushTimes, StreamAdapter, seconds_bounds
from ..times import rfc3339_ns
from .content import BadRequest, decode_content, snappy_block


@dataclass(slots=True)
class Decoded:
    streams: list[Stream] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one message per invalid stream
    invalid_entries: int = 0
    invalid_bytes: int = 0
    # Bounds (Unix ns) of the entries' times, when the decoder read them anyway (JSON, and protobuf
    # passed through): the time window then needs no second look at the entries.
    times: tuple[int, int] | None = None


class PushDecoder:
    """Bytes of a push request -> streams. Caches parsed label text across requests.

    `pass_through`: the job's processor forwards protobuf entries unchanged
    (Processor.passes_entries_through), so protobuf streams may keep their entries encoded.
    """

    def __init__(self, pass_through: bool = False) -> None:
        self._labels: BoundedCache[str, Labels | LabelError] = BoundedCache()
        self.pass_through = pass_through

    def labels(self, text: str) -> Labels:
        hit = self._labels.get(text)
        if hit is None:
            try:
                hit = parse_labels(text)
            except LabelError as e:
                hit = e
            self._labels.put(text, hit)
        if isinstance(hit, LabelError):
            raise hit
        return hit

    def decode(self, body: bytes, content_type: str, content_encoding: str, limit: int,
               *, legacy: bool = False) -> Decoded:
        """One push request body, as Loki reads it. Raises BadRequest (400) and BodyTooLarge (413)."""
        if not content_type.strip():
            raise BadRequest("missing Content-Type header")
        body = decode_content(body, content_encoding, limit)
        media = content_type.split(";", 1)[0].strip().lower()
        if media == "application/json":
            return self.legacy_json(body) if legacy else self.json(body)
        return self.protobuf(body, limit)

    def protobuf(self, raw: bytes, limit: int) -> Decoded:
        data = snappy_block(raw, limit)
        if self.pass_through:
            try:
                return self._encoded(data)
            except DecodeError:
                pass  # the full parse says why, in its own words (or takes what the views refuse)
        try:
            req = PushRequest.FromString(data)
        except DecodeError as e:
            raise BadRequest(f"invalid protobuf PushRequest: {e}") from None
        return self._streams(req.streams)

    def _encoded(self, data: bytes) -> Decoded:
        """Streams whose entries stay encoded (PushRaw), and the request's time bounds."""
        streams = PushRaw.FromString(data).streams
        # Also checks every string as the full parse would: a PushRaw entry is never read.
        seconds = PushTimes.FromString(data).streams.entries.timestamp.seconds
        out = self._streams(streams)
        # The bounds of every entry's time, those of streams refused above too (wider bounds are
        # still bounds).
        out.times = seconds_bounds(seconds, len(PushCount.FromString(data).streams.entries))
        return out

    def _streams(self, streams: Any) -> Decoded:
        out = Decoded()
        cached = self._labels.get
        append = out.streams.append
        for s in streams:
            text = s.labels
            labels = cached(text)
            if labels.__class__ is dict:  # the usual case, without a call
                append(Stream(labels, s, text))
                continue
            try:
                labels = self.labels(text)
            except LabelError as e:
                out.errors.append(f"stream {text[:200]!r}: {e}")
                out.invalid_entries += len(s.entries)
                out.invalid_bytes += s.ByteSize()
                continue
            out.streams.append(Stream(labels, s, text))
        return out

    def json(self, raw: bytes) -> Decoded:
        streams = _stream_list(raw)
        out = Decoded()
        earliest, latest = INT64, -1
        for i, s in enumerate(streams):
            try:
                stream, first, last = _json_stream(s)
            except (BadRequest, LabelError) as e:
                out.errors.append(f"stream {i}: {e}")
                values = s.get("values") if isinstance(s, dict) else None
                out.invalid_entries += len(values) if isinstance(values, list) else 0
                continue
            out.streams.append(stream)
            earliest = min(earliest, first)
            latest = max(latest, last)
        if latest >= 0:
            out.times = (earliest, latest)
        return out

    def legacy_json(self, raw: bytes) -> Decoded:
        """/api/prom/push JSON: {"streams":[{"labels":"{..}","entries":[{"ts":RFC3339,"line":..}]}]}."""
        streams = _stream_list(raw)
        out = Decoded()
        for i, s in enumerate(streams):
            try:
                if not isinstance(s, dict) or not isinstance(s.get("labels"), str) or not isinstance(s.get("entries"), list):
                    raise BadRequest('expected {"labels": "...", "entries": [...]}')
                text = s["labels"]
                labels = self.labels(text)
                entries = []
                for e in s["entries"]:
                    if not isinstance(e, dict) or not isinstance(e.get("line"), str):
                        raise BadRequest('expected entries of {"ts": "...", "line": "..."}')
                    entries.append((_rfc3339(e.get("ts")), e["line"]))
                out.streams.append(new_stream(labels, entries, text))
            except (BadRequest, LabelError) as e:
                out.errors.append(f"stream {i}: {e}")
        return out


def _stream_list(raw: bytes) -> list[Any]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"invalid JSON: {e}") from None
    streams = doc.get("streams") if isinstance(doc, dict) else None
    if not isinstance(streams, list):
        raise BadRequest('invalid push request: expected an object with a "streams" list')
    return streams


_DIGITS = re.compile(r"[+-]?[0-9]+")  # what Go's strconv.ParseInt takes (Python's int() takes "1_0", " 1")


def _ns(value: Any) -> int:
    # Loki reads the timestamp as a JSON string of Unix nanoseconds, and refuses a JSON number.
    if isinstance(value, str):
        if _DIGITS.fullmatch(value):
            return int(value)
        raise BadRequest(f"invalid timestamp {value[:40]!r}: expected Unix nanoseconds")
    shown = orjson.dumps(value)[:40].decode(errors="replace") if value is None or isinstance(value, (bool, int, float)) \
        else type(value).__name__
    raise BadRequest(f"invalid timestamp {shown}: expected Unix nanoseconds as a string")


def _label_value(value: Any) -> str:
    """A JSON label value as Loki keeps it: a string as is, anything else as its JSON text
    (pino-loki sends numbers: 200 -> "200", true -> "true", null -> "null")."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits
        return str(value)


def _json_stream(s: Any) -> tuple[Stream, int, int]:
    """The stream, and its earliest and latest entry time (INT64, -1 when it has no entries)."""
    if not isinstance(s, dict):
        raise BadRequest("a stream must be an object")
    labels = s.get("stream")
    if labels is None:
        labels = {}
    if not isinstance(labels, dict):
        raise BadRequest('"stream" must be an object of label values')
    if not all(isinstance(v, str) for v in labels.values()):
        labels = {k: _label_value(v) for k, v in labels.items()}
    values = s.get("values")
    if not isinstance(values, list):
        raise BadRequest('"values" must be a list')
    # Per line: one pass straight to upb's dict form, no helper calls in the usual case.
    entries: list[dict[str, Any]] = []
    append = entries.append
    first, last = INT64, -1
    for v in values:
        if not isinstance(v, list) or not 2 <= len(v) <= 3 or not isinstance(v[1], str):
            raise BadRequest('each value must be ["<unix ns>", "<line>"] or ["<unix ns>", "<line>", {metadata}]')
        t = v[0]
        # ASCII digits only, as Go's ParseInt reads them (int() alone takes " 1", "1_0", "١"); else the slow path.
        ts = int(t) if t.__class__ is str and t.isdigit() and t.isascii() else _ns(t)
        # The bounds, and with them the int64 check below (Loki parses an int64), in the same two comparisons.
        if ts < first:
            if ts < 0:
                raise BadRequest(f"invalid timestamp {str(ts)[:40]}: out of range")
            first = ts
        if ts > last:
            if ts >= INT64:
                raise BadRequest(f"invalid timestamp {str(ts)[:40]}: out of range")
            last = ts
        entry: dict[str, Any] = {"timestamp": {"seconds": ts // 1_000_000_000, "nanos": ts % 1_000_000_000}, "line": v[1]}
        if len(v) == 3:
            md = v[2]
            if not isinstance(md, dict) or not all(isinstance(x, str) for x in md.values()):
                raise BadRequest("structured metadata must be an object of string values")
            entry["structuredMetadata"] = [{"name": k, "value": x} for k, x in md.items()]
        append(entry)
    return Stream(labels, StreamAdapter(entries=entries)), first, last


def _rfc3339(value: Any) -> int:
    ns = rfc3339_ns(value)
    shown = value[:40] if isinstance(value, str) else str(value)[:40]
    if ns is None:
        raise BadRequest(f"invalid timestamp {shown!r}: expected RFC3339")
    if not 0 <= ns < INT64:
        raise BadRequest(f"invalid timestamp {shown!r}: out of range (1970 to 2262)")
    return ns


def raw_lines(body: bytes, receive_ns: int) -> Stream:
    """Promtail's raw endpoint: one entry per line, receive time, the job's static labels."""
    text = body.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return new_stream({}, ((receive_ns + i, ln[:-1] if ln.endswith("\r") else ln) for i, ln in enumerate(lines)))


def decode_raw(body: bytes, content_encoding: str, limit: int, receive_ns: int) -> Decoded:
    """One body of Promtail's raw endpoint."""
    return Decoded(streams=[raw_lines(decode_content(body, content_encoding, limit), receive_ns)])
