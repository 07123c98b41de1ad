"""Loki's push API: `/loki/api/v1/push`, `/api/prom/push` and Promtail's `/promtail/api/v1/raw`.

Bodies follow Loki's rules: `application/json` (any parameters) is JSON, any
other content type is a snappy-compressed `logproto.PushRequest`, and a missing
content type is refused. One invalid stream does not cost the others.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..config import DEFAULT_PUSH_PORT, JobConfig, Keys, common_job_keys
from ..ingest import Backpressure, Ingest
from ..model import LabelError, Labels, Stream, new_stream, parse_labels
from ..proto import PushRequest, StreamAdapter
from .http import BadRequest, BodyTooLarge, ClientGone, decode_content, read_body, snappy_block
from .listener import observe
from .registry import SourceKind, register

_LABEL_CACHE_SIZE = 50_000


@dataclass(slots=True)
class Decoded:
    streams: list[Stream] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one message per invalid stream
    invalid_entries: int = 0
    invalid_bytes: int = 0


class PushDecoder:
    """Bytes of a push request -> streams. Caches parsed label text across requests."""

    def __init__(self) -> None:
        self._labels: dict[str, Labels | LabelError] = {}

    def labels(self, text: str) -> Labels:
        hit = self._labels.get(text)
        if hit is None:
            try:
                hit = parse_labels(text)
            except LabelError as e:
                hit = e
            if len(self._labels) >= _LABEL_CACHE_SIZE:
                self._labels.clear()
            self._labels[text] = hit
        if isinstance(hit, LabelError):
            raise hit
        return hit

    def protobuf(self, raw: bytes, limit: int) -> Decoded:
        req = PushRequest()
        try:
            req.ParseFromString(snappy_block(raw, limit))
        except DecodeError as e:
            raise BadRequest(f"invalid protobuf PushRequest: {e}") from None
        out = Decoded()
        cached = self._labels.get
        append = out.streams.append
        for s in req.streams:
            text = s.labels
            labels = cached(text)
            if labels.__class__ is dict:  # the usual case, without a call
                append(Stream(labels, s, text))  # type: ignore[arg-type]
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
        for i, s in enumerate(streams):
            try:
                out.streams.append(_json_stream(s))
            except (BadRequest, LabelError) as e:
                out.errors.append(f"stream {i}: {e}")
                values = s.get("values") if isinstance(s, dict) else None
                out.invalid_entries += len(values) if isinstance(values, list) else 0
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
                    entries.append((rfc3339_ns(e.get("ts")), e["line"]))
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


def _ns(value: Any) -> int:
    # Loki sends nanoseconds as a string; a JSON integer is accepted too.
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise BadRequest(f"invalid timestamp {value[:40]!r}: expected Unix nanoseconds") from None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise BadRequest(f"invalid timestamp {value!r}: expected Unix nanoseconds as a string")


def _json_stream(s: Any) -> Stream:
    if not isinstance(s, dict):
        raise BadRequest("a stream must be an object")
    labels = s.get("stream")
    if labels is None:
        labels = {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise BadRequest('"stream" must be an object of string label values')
    values = s.get("values")
    if not isinstance(values, list):
        raise BadRequest('"values" must be a list')
    entries: list[dict[str, Any]] = []
    for v in values:
        if not isinstance(v, list) or not 2 <= len(v) <= 3 or not isinstance(v[1], str):
            raise BadRequest('each value must be ["<unix ns>", "<line>"] or ["<unix ns>", "<line>", {metadata}]')
        ts = _ns(v[0])
        if not 0 <= ts < 1 << 63:  # Loki parses an int64
            raise BadRequest(f"invalid timestamp {str(ts)[:40]}: out of range")
        entry: dict[str, Any] = {"timestamp": {"seconds": ts // 1_000_000_000, "nanos": ts % 1_000_000_000}, "line": v[1]}
        if len(v) == 3:
            md = v[2]
            if not isinstance(md, dict) or not all(isinstance(x, str) for x in md.values()):
                raise BadRequest("structured metadata must be an object of string values")
            entry["structuredMetadata"] = [{"name": k, "value": x} for k, x in md.items()]
        entries.append(entry)
    return Stream(labels, StreamAdapter(entries=entries))


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", re.I)


def rfc3339_ns(value: Any) -> int:
    if not isinstance(value, str):
        raise BadRequest(f"invalid timestamp {value!r}: expected RFC3339")
    m = _RFC3339.fullmatch(value.strip())
    if m is None:
        raise BadRequest(f"invalid timestamp {value[:40]!r}: expected RFC3339")
    zone = "+00:00" if m.group(3).upper() == "Z" else m.group(3)
    seconds = int(datetime.fromisoformat(m.group(1) + zone).timestamp())
    return seconds * 1_000_000_000 + int((m.group(2) or "0").ljust(9, "0"))


def raw_lines(body: bytes, receive_ns: int) -> Stream:
    """Promtail's raw endpoint: one entry per line, receive time, the job's static labels."""
    text = body.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return new_stream({}, ((receive_ns + i, ln[:-1] if ln.endswith("\r") else ln) for i, ln in enumerate(lines)))


def _length(request: Request) -> int:
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else 0


def _too_many(e: Backpressure) -> Response:
    return PlainTextResponse(f"{e}\n", 429, headers={"Retry-After": e.retry_after_header})


def routes(ingest: Ingest) -> list[Route]:
    job = ingest.job
    limit = job.max_message_size
    decoder = PushDecoder()

    def decode(request: Request, body: bytes) -> Decoded:
        ctype = request.headers.get("content-type", "")
        if not ctype.strip():
            raise BadRequest("missing Content-Type header")
        body = decode_content(body, request.headers.get("content-encoding", ""), limit)
        media = ctype.split(";", 1)[0].strip().lower()
        if media == "application/json":
            return decoder.legacy_json(body) if request.url.path.startswith("/api/prom/") else decoder.json(body)
        return decoder.protobuf(body, limit)

    def decode_raw(request: Request, body: bytes, receive_ns: int) -> Decoded:
        body = decode_content(body, request.headers.get("content-encoding", ""), limit)
        return Decoded(streams=[raw_lines(body, receive_ns)])

    async def handle(request: Request, route: str, raw: bool) -> Response:
        with observe(job.name, route) as done:
            receive_ns = time.time_ns()
            tenant = request.headers.get("x-scope-orgid", "")
            try:
                # Wait for room (and reserve it) before reading: a refused request costs nothing.
                ticket = await ingest.check(tenant, _length(request))
            except Backpressure as e:
                return done(_too_many(e))
            try:
                try:
                    body = await read_body(request, limit)
                    decoded = decode_raw(request, body, receive_ns) if raw else decode(request, body)
                except BodyTooLarge as e:
                    return done(PlainTextResponse(f"{e}\n", 413))
                except ClientGone as e:
                    return done(PlainTextResponse(f"{e}\n", 499))  # nginx's "client closed request"
                except BadRequest as e:
                    return done(PlainTextResponse(f"{e}\n", 400))
                if decoded.invalid_entries:
                    ingest.count_invalid(decoded.invalid_entries, decoded.invalid_bytes)
                try:
                    outcome = await ingest.push(decoded.streams, tenant, receive_ns, ticket)
                except Backpressure as e:
                    return done(_too_many(e))
            finally:
                ticket.release()
            errors = decoded.errors + outcome.errors
            if errors:
                # As Loki: the valid streams were taken; the sender learns what was refused.
                more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
                return done(PlainTextResponse("\n".join(errors[:10]) + more + "\n", 400))
            return done(Response(status_code=204))

    async def push(request: Request) -> Response:
        return await handle(request, "push", raw=False)

    async def raw(request: Request) -> Response:
        return await handle(request, "raw", raw=True)

    return [
        Route("/loki/api/v1/push", push, methods=["POST"]),
        Route("/api/prom/push", push, methods=["POST"]),
        Route("/promtail/api/v1/raw", raw, methods=["POST"]),
    ]


def parse_block(k: Keys, job: JobConfig) -> None:
    common_job_keys(k, job, DEFAULT_PUSH_PORT, incoming_ts_default=False)


register(SourceKind("loki_push_api", parse_block, routes))
