#!/usr/bin/env python3
"""A stand-in for Grafana Loki's push endpoint, for tests.

It runs as a real, separate process (``python tests/loki_receiver.py --port N``)
and speaks ``POST /loki/api/v1/push`` the way Loki's distributor does: same
body decoding, same label parsing, same validation rules and default limits,
same status codes, and close to the same error texts. It records every entry
it accepts, and it can be told to fail (status, delay, hang) on demand.

It does not import anything from ``relay``: the logproto schema is defined
below, so the stand-in checks the relay's wire format independently.

What Loki does, and where it is in Loki's source (grafana/loki, v3.x):

* ``pkg/loghttp/push/push.go`` (``ParseLokiRequest`` / ``parsePushRequestBody``)
  - Content-Encoding: "" or "snappy" (passed through), "gzip", "deflate"
    (Go ``compress/flate``: a *raw* DEFLATE stream, no zlib header); anything
    else -> 400 ``Content-Encoding "x" not supported``.
  - Content-Type is read with Go's ``mime.ParseMediaType``: a missing or empty
    header is an error (``mime: no media type``) -> 400; a bad parameter
    (``application/json; charsetutf-8``) -> 400. ``application/json`` (any
    case, parameters allowed) is JSON; any other valid type is
    snappy-*block*-compressed protobuf ``logproto.PushRequest``.
  - Each stream's label text goes through ``syntax.ParseLabels`` (the PromQL
    ``ParseMetric`` grammar). A single unparseable stream fails the whole
    request with 400 ``couldn't parse labels: ...``; nothing is stored.
    Labels with empty values are dropped (``labels.NewBuilder``).
* ``pkg/util/unmarshal`` and ``pkg/loghttp/entry.go`` (JSON)
  ``{"streams":[{"stream":{..},"values":[["<ns>","line",{sm}?]]}]}``: the
  timestamp must be a JSON string holding a base-10 int64, the line a string,
  the optional third item an object of strings; more than 3 items is an error.
* ``pkg/distributor/distributor.go`` (``Push``)
  - No streams at all -> 422 ``error at least one valid stream is required
    for ingestion``. Streams without entries are skipped.
  - Label and entry validation errors are collected; the valid streams and
    entries of the same request ARE stored, and the request answers 400 with
    the grouped messages (``util.GroupedErrors``: "N errors like: ..." when
    more than one). All valid -> 204.
* ``pkg/distributor/validator.go`` (``ValidateLabels``, ``ValidateEntry``),
  ``pkg/validation/validate.go`` (messages), ``pkg/validation/limits.go``
  (defaults): at least one label pair; at most 15 label names
  (``service_name`` not counted); names <= 1024 bytes; values <= 2048 bytes;
  no duplicate names; entries older than now-168h (reject_old_samples is on
  by default, so a zero timestamp is rejected) or newer than now+10m are
  rejected; lines <= 256KB (262144 bytes); structured metadata allowed, <= 64KB
  (sum of name+value lengths) and <= 128 pairs per entry.
* Tenant (dskit ``tenant.TenantID``): ``X-Scope-OrgID``; "|" (several tenants)
  or characters outside ``[a-zA-Z0-9!-_.*'()]``, more than 150 characters, or
  "."/".." -> 400. No header: tenant "" (or 401 ``no org id`` with
  ``--require-tenant``, like Loki with auth_enabled).

Where this stand-in is deliberately stricter or simpler than Loki:

* Protobuf strings must be valid UTF-8 (Loki's gogo-generated decoder does not
  check); invalid UTF-8 -> 400. ``--allow-invalid-utf8`` relaxes this.
* Loki 3 adds a ``service_name`` label (so it would accept ``{}``) and may
  rename structured metadata keys; this stand-in records labels and
  structured metadata exactly as sent and rejects empty label sets.
* Label names must be plain identifiers; quoted UTF-8 label names are refused.

Control API (JSON): ``POST /control`` adds a fault rule, ``POST /reset``
clears everything, ``GET /entries``, ``GET /requests``, ``GET /stats``,
``GET /ready``, ``GET /control`` (rules). See ``Receiver`` for a client.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as _dt
import gzip
import os
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

import orjson

PUSH_PATH = "/loki/api/v1/push"

# Loki defaults (pkg/validation/limits.go, Loki 3.x).
DEFAULT_LIMITS: dict[str, Any] = {
    "max_line_size": 256 * 1024,  # "256KB" via flagext.ByteSize (1024-based)
    "max_label_names_per_series": 15,
    "max_label_name_length": 1024,
    "max_label_value_length": 2048,
    "reject_old_samples": True,
    "reject_old_samples_max_age": 7 * 24 * 3600.0,  # "7d"
    "creation_grace_period": 600.0,  # "10m"
    "allow_structured_metadata": True,
    "max_structured_metadata_size": 64 * 1024,  # "64kb"
    "max_structured_metadata_entries_count": 128,
    "require_tenant": False,
    "allow_invalid_utf8": False,
}

HEADERS_OF_INTEREST = (
    "authorization",
    "user-agent",
    "x-scope-orgid",
    "content-type",
    "content-encoding",
)

SERVICE_NAME = "service_name"
INTERNAL_STREAM_LABELS = ("__aggregated_metric__", "__pattern__")

# --------------------------------------------------------------------------
# logproto schema, built at runtime (no generated code, no relay import).
# --------------------------------------------------------------------------

_PROTO_FILE = "testloki/logproto.proto"
_PROTO_PKG = "testloki.logproto"
_proto_lock = threading.Lock()
_proto_classes: dict[str, Any] = {}


def _proto() -> dict[str, Any]:
    """Message classes: PushRequest, StreamAdapter, EntryAdapter,
    LabelPairAdapter (string fields, for building requests) and Raw* twins
    with ``bytes`` instead of ``string`` (same wire format) used for decoding,
    so that UTF-8 problems can be reported precisely."""
    with _proto_lock:
        if _proto_classes:
            return _proto_classes
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        from google.protobuf import timestamp_pb2  # noqa: F401  (registers the file)

        pool = descriptor_pool.Default()
        try:
            pool.FindFileByName(_PROTO_FILE)
        except KeyError:
            fdp = descriptor_pb2.FileDescriptorProto()
            fdp.name = _PROTO_FILE
            fdp.package = _PROTO_PKG
            fdp.syntax = "proto3"
            fdp.dependency.append("google/protobuf/timestamp.proto")
            F = descriptor_pb2.FieldDescriptorProto
            for prefix, stype in (("", F.TYPE_STRING), ("Raw", F.TYPE_BYTES)):

                def msg(name: str, fields: list[tuple]) -> None:
                    m = fdp.message_type.add()
                    m.name = prefix + name
                    for fname, num, ftype, label, tname in fields:
                        f = m.field.add()
                        f.name = fname
                        f.number = num
                        f.type = ftype
                        f.label = label
                        if tname:
                            f.type_name = tname

                OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
                pkg = "." + _PROTO_PKG + "." + prefix
                msg("LabelPairAdapter", [("name", 1, stype, OPT, None), ("value", 2, stype, OPT, None)])
                msg(
                    "EntryAdapter",
                    [
                        ("timestamp", 1, F.TYPE_MESSAGE, OPT, ".google.protobuf.Timestamp"),
                        ("line", 2, stype, OPT, None),
                        ("structuredMetadata", 3, F.TYPE_MESSAGE, REP, pkg + "LabelPairAdapter"),
                    ],
                )
                msg(
                    "StreamAdapter",
                    [
                        ("labels", 1, stype, OPT, None),
                        ("entries", 2, F.TYPE_MESSAGE, REP, pkg + "EntryAdapter"),
                        ("hash", 3, F.TYPE_UINT64, OPT, None),
                    ],
                )
                msg("PushRequest", [("streams", 1, F.TYPE_MESSAGE, REP, pkg + "StreamAdapter")])
            pool.Add(fdp)
        for prefix in ("", "Raw"):
            for name in ("PushRequest", "StreamAdapter", "EntryAdapter", "LabelPairAdapter"):
                desc = pool.FindMessageTypeByName(f"{_PROTO_PKG}.{prefix}{name}")
                _proto_classes[prefix + name] = message_factory.GetMessageClass(desc)
        return _proto_classes


def build_push_request(streams: Iterable[tuple]) -> bytes:
    """Serialize a PushRequest (NOT compressed).

    ``streams``: iterable of ``(labels_text, entries)``; each entry is
    ``(ts_ns, line)`` or ``(ts_ns, line, {name: value})``. ``ts_ns=None``
    leaves the timestamp unset.
    """
    P = _proto()
    req = P["PushRequest"]()
    for labels_text, entries in streams:
        s = req.streams.add()
        s.labels = labels_text
        for e in entries:
            ent = s.entries.add()
            ts = e[0]
            if ts is not None:
                ent.timestamp.seconds, ent.timestamp.nanos = divmod(int(ts), 1_000_000_000)
            ent.line = e[1]
            if len(e) > 2 and e[2]:
                for k, v in e[2].items():
                    p = ent.structuredMetadata.add()
                    p.name = k
                    p.value = v
    return req.SerializeToString()


def encode_push(streams: Iterable[tuple]) -> bytes:
    """``build_push_request`` + snappy block compression (what Promtail sends)."""
    import snappy

    return bytes(snappy.compress(build_push_request(streams)))


# --------------------------------------------------------------------------
# Go-compatible helpers.
# --------------------------------------------------------------------------

_GO_NAMED_ESCAPES = {7: r"\a", 8: r"\b", 12: r"\f", 10: r"\n", 13: r"\r", 9: r"\t", 11: r"\v"}


def go_quote(s: str) -> str:
    """Approximation of Go's strconv.Quote (used by labels.Labels.String())."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == " " or (ch.isprintable() and o != 0x7F):
            out.append(ch)
        elif o in _GO_NAMED_ESCAPES:
            out.append(_GO_NAMED_ESCAPES[o])
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")
        elif o < 0x10000:
            out.append("\\u%04x" % o)
        else:
            out.append("\\U%08x" % o)
    out.append('"')
    return "".join(out)


def labels_string(pairs: Iterable[tuple[str, str]]) -> str:
    """Prometheus labels.Labels.String(): ``{a="b", c="d"}``."""
    return "{" + ", ".join(f"{n}={go_quote(v)}" for n, v in pairs) + "}"


_TOKEN_SPECIALS = set('()<>@,;:\\"/[]?=')


def _is_token_char(c: str) -> bool:
    return 0x20 < ord(c) < 0x7F and c not in _TOKEN_SPECIALS


def _consume_token(s: str) -> tuple[str, str]:
    i = 0
    while i < len(s) and _is_token_char(s[i]):
        i += 1
    return s[:i], s[i:]


def parse_media_type(v: str) -> str:
    """Port of the parts of Go's mime.ParseMediaType that decide success.
    Returns the lower-cased media type or raises ValueError(go message)."""
    base = v.split(";", 1)[0]
    mediatype = base.strip(" \t").lower()
    typ, rest = _consume_token(mediatype)
    if not typ:
        raise ValueError("mime: no media type")
    if rest:
        if not rest.startswith("/"):
            raise ValueError("mime: expected slash after first token")
        sub, rest2 = _consume_token(rest[1:])
        if not sub:
            raise ValueError("mime: expected token after slash")
        if rest2:
            raise ValueError("mime: unexpected content after media subtype")
    # parameters
    params = v[len(base):]
    seen: set[str] = set()
    while params:
        params = params.lstrip(" \t")
        if not params:
            break
        if not params.startswith(";"):
            raise ValueError("mime: invalid media parameter")
        params = params[1:].lstrip(" \t")
        if not params:  # trailing semicolon is tolerated
            break
        key, rest = _consume_token(params)
        if not key:
            raise ValueError("mime: invalid media parameter")
        rest = rest.lstrip(" \t")
        if not rest.startswith("="):
            raise ValueError("mime: invalid media parameter")
        rest = rest[1:].lstrip(" \t")
        if rest.startswith('"'):
            i, ok = 1, False
            while i < len(rest):
                if rest[i] == "\\":
                    i += 2
                    continue
                if rest[i] == '"':
                    ok = True
                    break
                i += 1
            if not ok:
                raise ValueError("mime: invalid media parameter")
            rest = rest[i + 1:]
        else:
            val, rest = _consume_token(rest)
            if not val:
                raise ValueError("mime: invalid media parameter")
        k = key.lower()
        if k in seen:
            raise ValueError("mime: duplicate parameter name")
        seen.add(k)
        params = rest
    return mediatype


_TENANT_OK = re.compile(r"[a-zA-Z0-9!\-_.*'()]")


def validate_tenant(header: str | None, require: bool) -> tuple[str, str | None, int]:
    """Returns (tenant, error, status) following dskit's tenant rules."""
    if not header:
        if require:
            return "", "no org id", 401
        return "", None, 0
    if "|" in header:
        return header, "multiple org IDs present", 400
    for ch in header:
        if not _TENANT_OK.fullmatch(ch):
            return header, f"tenant ID '{header}' contains unsupported character '{ch}'", 400
    if len(header) > 150:
        return header, "tenant ID is too long: max 150 characters", 400
    if header in (".", ".."):
        return header, "tenant ID is '.' or '..'", 400
    return header, None, 0


def rfc3339(ns: int) -> str:
    try:
        secs, _ = divmod(ns, 1_000_000_000)
        d = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc) + _dt.timedelta(seconds=secs)
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"
    except (OverflowError, ValueError):
        return str(ns)


# --------------------------------------------------------------------------
# Label text parser: the PromQL ParseMetric grammar used by syntax.ParseLabels
#   metric    : metric_identifier label_set | label_set
#   label_set : '{' list '}' | '{' list ',' '}' | '{' '}' | <empty>
#   item      : IDENTIFIER '=' STRING
# STRING: "..." or '...' with Go escapes, or `raw`.
# --------------------------------------------------------------------------


class LabelParseError(ValueError):
    pass


_METRIC_ID = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_ID = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_HEX = "0123456789abcdefABCDEF"


class _LabelParser:
    def __init__(self, text: str):
        self.s = text
        self.i = 0

    def err(self, msg: str, pos: int | None = None) -> LabelParseError:
        pos = self.i if pos is None else pos
        line = self.s.count("\n", 0, pos) + 1
        col = pos - (self.s.rfind("\n", 0, pos) + 1) + 1
        return LabelParseError(f"{line}:{col}: parse error: {msg}")

    def desc(self) -> str:
        if self.i >= len(self.s):
            return "end of input"
        return repr(self.s[self.i])

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t\n\r":
            self.i += 1

    def parse(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        self.ws()
        m = _METRIC_ID.match(self.s, self.i)
        if m:
            out.append(("__name__", m.group()))
            self.i = m.end()
            self.ws()
        if self.i < len(self.s) and self.s[self.i] == "{":
            self.i += 1
            self.ws()
            if self.i < len(self.s) and self.s[self.i] == "}":
                self.i += 1
            else:
                while True:
                    self.ws()
                    if self.i < len(self.s) and self.s[self.i] == '"':
                        raise self.err("quoted label names are not supported by this stand-in")
                    m = _LABEL_ID.match(self.s, self.i)
                    if not m:
                        raise self.err(f"unexpected {self.desc()} in label set, expected identifier or \"}}\"")
                    name = m.group()
                    self.i = m.end()
                    self.ws()
                    if self.s.startswith("=~", self.i) or not self.s.startswith("=", self.i):
                        raise self.err(f"unexpected {self.desc()} in label set, expected \"=\"")
                    self.i += 1
                    self.ws()
                    value = self.string()
                    out.append((name, value))
                    self.ws()
                    if self.i < len(self.s) and self.s[self.i] == ",":
                        self.i += 1
                        self.ws()
                        if self.i < len(self.s) and self.s[self.i] == "}":
                            self.i += 1
                            break
                        continue
                    if self.i < len(self.s) and self.s[self.i] == "}":
                        self.i += 1
                        break
                    raise self.err(f"unexpected {self.desc()} in label set, expected \",\" or \"}}\"")
        self.ws()
        if self.i != len(self.s):
            raise self.err(f"unexpected {self.desc()}")
        return out

    def string(self) -> str:
        if self.i >= len(self.s) or self.s[self.i] not in "\"'`":
            raise self.err(f"unexpected {self.desc()} in label set, expected string")
        q = self.s[self.i]
        start = self.i
        self.i += 1
        if q == "`":
            end = self.s.find("`", self.i)
            if end < 0:
                raise self.err("unterminated raw string", start)
            v = self.s[self.i:end]
            self.i = end + 1
            return v
        buf = bytearray()
        s = self.s
        while True:
            if self.i >= len(s) or s[self.i] == "\n":
                raise self.err("unterminated quoted string", start)
            c = s[self.i]
            if c == q:
                self.i += 1
                break
            if c != "\\":
                buf += c.encode("utf-8", "surrogatepass")
                self.i += 1
                continue
            self.i += 1
            if self.i >= len(s):
                raise self.err("unterminated quoted string", start)
            e = s[self.i]
            self.i += 1
            simple = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}
            if e in simple:
                buf.append(simple[e])
            elif e == q:
                buf += e.encode()
            elif e in "01234567":
                digits = s[self.i - 1:self.i + 2]
                if len(digits) != 3 or any(d not in "01234567" for d in digits):
                    raise self.err("illegal character in octal escape")
                val = int(digits, 8)
                if val > 255:
                    raise self.err("escape sequence is an invalid Unicode code point")
                buf.append(val)
                self.i += 2
            elif e in "xuU":
                n = {"x": 2, "u": 4, "U": 8}[e]
                digits = s[self.i:self.i + n]
                if len(digits) != n or any(d not in _HEX for d in digits):
                    raise self.err("illegal character in escape sequence")
                val = int(digits, 16)
                self.i += n
                if e == "x":
                    buf.append(val)
                else:
                    if val > 0x10FFFF or 0xD800 <= val <= 0xDFFF:
                        raise self.err("escape sequence is an invalid Unicode code point")
                    buf += chr(val).encode()
            else:
                raise self.err(f"unknown escape sequence U+{ord(e):04X} {e!r}")
        try:
            return buf.decode("utf-8")
        except UnicodeDecodeError:
            raise self.err("invalid UTF-8 in label value", start) from None


def parse_labels(text: str) -> list[tuple[str, str]]:
    """syntax.ParseLabels: parse, sort by name, drop labels with empty values.
    Duplicates are kept (the validator reports them)."""
    pairs = _LabelParser(text).parse()
    empty = {n for n, v in pairs if v == ""}
    pairs = [(n, v) for n, v in pairs if n not in empty]
    pairs.sort(key=lambda p: p[0].encode("utf-8"))
    return pairs


# --------------------------------------------------------------------------
# Request decoding.
# --------------------------------------------------------------------------


class BadRequest(Exception):
    def __init__(self, msg: str, status: int = 400):
        super().__init__(msg)
        self.status = status


# A decoded stream: (labels_text, [(ts_ns, line, [(name, value), ...]), ...])
Stream = tuple[str, list[tuple[int, str, list[tuple[str, str]]]]]

ZERO_TIME_NS = -62135596800 * 1_000_000_000  # Go's time.Time{} (0001-01-01)


def decode_body(body: bytes, content_type: str | None, content_encoding: str | None, limits: dict) -> tuple[list[Stream], str]:
    enc = content_encoding or ""
    if enc in ("", "snappy"):
        pass
    elif enc == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as e:
            raise BadRequest(f"gzip: {e}") from None
    elif enc == "deflate":
        try:
            d = zlib.decompressobj(-15)  # raw DEFLATE, like Go's compress/flate
            body = d.decompress(body) + d.flush()
            if not d.eof:
                raise BadRequest("flate: unexpected EOF")
        except zlib.error as e:
            raise BadRequest(f"flate: corrupt input ({e})") from None
    else:
        raise BadRequest(f'Content-Encoding "{enc}" not supported')

    try:
        mediatype = parse_media_type(content_type or "")
    except ValueError as e:
        raise BadRequest(str(e)) from None

    if mediatype == "application/json":
        return decode_json(body), mediatype
    return decode_proto(body, limits), mediatype


def decode_proto(body: bytes, limits: dict) -> list[Stream]:
    import snappy

    try:
        raw = bytes(snappy.uncompress(body))
    except Exception:
        raise BadRequest("snappy: corrupt input") from None
    P = _proto()
    req = P["RawPushRequest"]()
    try:
        req.ParseFromString(raw)
    except Exception as e:  # google.protobuf.message.DecodeError
        raise BadRequest(f"proto: cannot parse PushRequest: {e}") from None

    errors = "surrogateescape" if limits.get("allow_invalid_utf8") else "strict"

    def text(b: bytes, what: str) -> str:
        try:
            return b.decode("utf-8", errors)
        except UnicodeDecodeError:
            raise BadRequest(f"proto: {what}: invalid UTF-8 in string field") from None

    out: list[Stream] = []
    for s in req.streams:
        labels = text(s.labels, "StreamAdapter.labels")
        entries = []
        for e in s.entries:
            if e.HasField("timestamp"):
                secs, nanos = e.timestamp.seconds, e.timestamp.nanos
                # gogo types.StdTimeUnmarshal -> validateTimestamp
                if not 0 <= nanos < 1_000_000_000:
                    raise BadRequest(f"timestamp: seconds:{secs} nanos:{nanos}: nanos not in range [0, 1e9)")
                if not -62135596800 <= secs < 253402300800:
                    raise BadRequest(f"timestamp: seconds:{secs} nanos:{nanos}: seconds out of range")
                ts = secs * 1_000_000_000 + nanos
            else:
                ts = ZERO_TIME_NS
            sm = [(text(p.name, "LabelPairAdapter.name"), text(p.value, "LabelPairAdapter.value")) for p in e.structuredMetadata]
            entries.append((ts, text(e.line, "EntryAdapter.line"), sm))
        out.append((labels, entries))
    return out


_INT_RE = re.compile(r"[+-]?[0-9]+")


def decode_json(body: bytes) -> list[Stream]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"loghttp.PushRequest: ReadObject: {e}") from None
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise BadRequest("loghttp.PushRequest: ReadObject: expect { or n, but found " + type(doc).__name__)
    streams = doc.get("streams")
    if streams is None:
        return []
    if not isinstance(streams, list):
        raise BadRequest("loghttp.PushRequest.Streams: ReadArray: expect [ or n")
    out: list[Stream] = []
    for s in streams:
        if not isinstance(s, dict):
            raise BadRequest("loghttp.PushRequest.Streams: expect { for a stream")
        lbls = s.get("stream")
        if lbls is None:
            lbls = {}
        if not isinstance(lbls, dict):
            raise BadRequest("loghttp.Stream.Labels: ReadMapCB: expect { or n")
        for k, v in lbls.items():
            if not isinstance(v, str):
                raise BadRequest(f"loghttp.Stream.Labels: ReadString: expects \" or n, label {k!r} is not a string")
        labels_text = labels_string(sorted(lbls.items(), key=lambda kv: kv[0].encode("utf-8", "surrogatepass")))
        values = s.get("values")
        if values is None:
            values = []
        if not isinstance(values, list):
            raise BadRequest("loghttp.Stream.Entries: ReadArrayCB: expect [ or n")
        entries = []
        for v in values:
            if not isinstance(v, list):
                raise BadRequest("loghttp.Stream.Entries: ReadArrayCB: expect [ for an entry")
            if len(v) > 3:
                raise BadRequest("loghttp.Stream.Entries: error reading entry: array must contains 2 values")
            ts = ZERO_TIME_NS
            line = ""
            sm: list[tuple[str, str]] = []
            if len(v) >= 1:
                t = v[0]
                if not isinstance(t, str):
                    raise BadRequest("loghttp.Stream.Entries: ReadString: expects \" or n (timestamp must be a string)")
                if not _INT_RE.fullmatch(t):
                    raise BadRequest(f'loghttp.Stream.Entries: error reading entry timestamp: strconv.ParseInt: parsing "{t}": invalid syntax')
                ts_i = int(t)
                if not -(2**63) <= ts_i < 2**63:
                    raise BadRequest(f'loghttp.Stream.Entries: error reading entry timestamp: strconv.ParseInt: parsing "{t}": value out of range')
                ts = ts_i
            if len(v) >= 2:
                if not isinstance(v[1], str):
                    raise BadRequest("loghttp.Stream.Entries: ReadString: expects \" or n (line must be a string)")
                line = v[1]
            if len(v) == 3 and v[2] is not None:
                if not isinstance(v[2], dict):
                    raise BadRequest("loghttp.Stream.Entries: ReadMapCB: expect { or n (structured metadata)")
                for k, mv in v[2].items():
                    if not isinstance(mv, str):
                        raise BadRequest("loghttp.Stream.Entries: ReadString: structured metadata values must be strings")
                    sm.append((k, mv))
            entries.append((ts, line, sm))
        out.append((labels_text, entries))
    return out


# --------------------------------------------------------------------------
# Validation (distributor.Push + Validator).
# --------------------------------------------------------------------------


def _blen(s: str) -> int:
    return len(s.encode("utf-8", "surrogateescape"))


def validate_labels(pairs: list[tuple[str, str]], limits: dict) -> str | None:
    text = labels_string(pairs)
    if not pairs:
        return "error at least one label pair is required per stream"
    names = [n for n, _ in pairs]
    if any(n in INTERNAL_STREAM_LABELS for n in names):
        return None
    n = len(pairs) - (1 if SERVICE_NAME in names else 0)
    if n > limits["max_label_names_per_series"]:
        return f"entry for stream '{text}' has {n} label names; limit {limits['max_label_names_per_series']}"
    last = ""
    for name, value in pairs:
        if _blen(name) > limits["max_label_name_length"]:
            return f"stream '{text}' has label name too long: '{name}'"
        if _blen(value) > limits["max_label_value_length"]:
            return f"stream '{text}' has label value too long: '{value}'"
        if name == last:
            return f"stream '{text}' has duplicate label name: '{name}'"
        last = name
    return None


def validate_entry(text: str, ts: int, line: str, sm: list, limits: dict, now_ns: int) -> str | None:
    if limits["reject_old_samples"]:
        oldest = now_ns - int(limits["reject_old_samples_max_age"] * 1e9)
        if ts < oldest:
            return f"entry for stream '{text}' has timestamp too old: {rfc3339(ts)}, oldest acceptable timestamp is: {rfc3339(oldest)}"
    if ts > now_ns + int(limits["creation_grace_period"] * 1e9):
        return f"entry for stream '{text}' has timestamp too new: {rfc3339(ts)}"
    max_line = limits["max_line_size"]
    if max_line and _blen(line) > max_line:
        return f"Max entry size '{max_line}' bytes exceeded for stream '{text}' while adding an entry with length '{_blen(line)}' bytes"
    if sm:
        if not limits["allow_structured_metadata"]:
            return (
                f"stream '{text}' includes structured metadata, but this feature is disallowed. Please see "
                "`limits_config.allow_structured_metadata` or contact your Loki administrator to enable it."
            )
        size = sum(_blen(n) + _blen(v) for n, v in sm)
        max_size = limits["max_structured_metadata_size"]
        if max_size and size > max_size:
            return (
                f"stream '{text}' has structured metadata too large: '{size}' bytes, limit: '{max_size}' bytes. "
                "Please see `limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it."
            )
        max_count = limits["max_structured_metadata_entries_count"]
        if max_count and len(sm) > max_count:
            return (
                f"stream '{text}' has too many structured metadata labels: '{len(sm)}', limit: '{max_count}'. "
                "Please see `limits_config.max_structured_metadata_entries_count` or contact your Loki administrator to increase it."
            )
    return None


def grouped_errors(errs: list[str]) -> str:
    """util.GroupedErrors.Error()"""
    counts: "OrderedDict[str, int]" = OrderedDict()
    for e in errs:
        counts[e] = counts.get(e, 0) + 1
    parts = []
    for e, n in counts.items():
        parts.append(f"{n} errors like: {e}" if (len(counts) > 1 or n > 1) else e)
    return "; ".join(parts)


def process_push(body: bytes, content_type: str | None, content_encoding: str | None, limits: dict, label_cache: dict | None = None):
    """Decode + validate like Loki. Returns (status, message, accepted,
    discarded) where accepted is a list of (labels_dict, labels_raw, ts, line,
    sm_dict) and discarded the number of entries dropped by validation."""
    try:
        streams, _ = decode_body(body, content_type, content_encoding, limits)
        parsed = []
        for labels_text, entries in streams:
            pairs = label_cache.get(labels_text) if label_cache is not None else None
            if pairs is None:
                try:
                    pairs = parse_labels(labels_text)
                except LabelParseError as e:
                    raise BadRequest(f"couldn't parse labels: {e}") from None
                if label_cache is not None:
                    if len(label_cache) > 100_000:
                        label_cache.clear()
                    label_cache[labels_text] = pairs
            parsed.append((labels_text, pairs, entries))
    except BadRequest as e:
        return e.status, str(e), [], 0

    if not parsed:
        return 422, "error at least one valid stream is required for ingestion", [], 0

    errs: list[str] = []
    accepted = []
    discarded = 0
    now_ns = time.time_ns()
    for labels_text, pairs, entries in parsed:
        if not entries:
            continue
        err = validate_labels(pairs, limits)
        if err:
            errs.append(err)
            discarded += len(entries)
            continue
        text = labels_string(pairs)
        ldict = dict(pairs)
        for ts, line, sm in entries:
            err = validate_entry(text, ts, line, sm, limits, now_ns)
            if err:
                errs.append(err)
                discarded += 1
                continue
            accepted.append((ldict, labels_text, ts, line, dict(sm)))
    if errs:
        return 400, grouped_errors(errs), accepted, discarded
    return 204, "", accepted, discarded


# --------------------------------------------------------------------------
# Server state.
# --------------------------------------------------------------------------


class State:
    def __init__(self, limits: dict):
        self.limits = limits
        self.lock = threading.Lock()
        self.label_cache: dict = {}
        self.hanging = 0  # survives reset(): released requests decrement it
        self._init()

    def _init(self) -> None:
        self.entries: list[dict] = []
        self.requests: list[dict] = []
        self.rules: list[dict] = []
        self.n_requests = 0
        self.n_rejected = 0
        self.n_rejected_entries = 0
        self.n_injected = 0
        self.by_tenant: dict[str, dict[str, int]] = {}
        self.release = threading.Event()

    def reset(self) -> None:
        with self.lock:
            old = self.release
            self._init()
        old.set()

    def clear_rules(self) -> None:
        with self.lock:
            old = self.release
            self.rules = []
            self.release = threading.Event()
        old.set()

    def tenant_stats(self, tenant: str) -> dict[str, int]:
        t = self.by_tenant.get(tenant)
        if t is None:
            t = self.by_tenant[tenant] = {"requests": 0, "entries": 0, "rejected": 0, "injected": 0}
        return t

    def take_rule(self, tenant: str) -> dict | None:
        with self.lock:
            for i, r in enumerate(self.rules):
                if r["tenant"] is not None and r["tenant"] != tenant:
                    continue
                if r["count"] is not None:
                    r["count"] -= 1
                    if r["count"] <= 0:
                        del self.rules[i]
                r = dict(r)
                r["_release"] = self.release
                return r
        return None


def parse_rule(doc: Any) -> dict:
    if not isinstance(doc, dict):
        raise ValueError("control body must be a JSON object")
    known = {"status", "count", "delay", "hang", "tenant", "retry_after", "body", "accept"}
    unknown = set(doc) - known - {"clear"}
    if unknown:
        raise ValueError(f"unknown control keys: {sorted(unknown)}")
    status = doc.get("status")
    if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
        raise ValueError("status must be an HTTP status code")
    count = doc.get("count")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise ValueError("count must be a positive integer (omit for 'until reset')")
    delay = doc.get("delay") or 0
    if not isinstance(delay, (int, float)) or delay < 0:
        raise ValueError("delay must be a non-negative number of seconds")
    hang = bool(doc.get("hang", False))
    if status is None and not delay and not hang:
        raise ValueError("a rule needs at least one of status, delay, hang")
    tenant = doc.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        raise ValueError("tenant must be a string")
    ra = doc.get("retry_after")
    body = doc.get("body")
    if body is not None and not isinstance(body, str):
        raise ValueError("body must be a string")
    return {
        "status": status,
        "count": count,
        "delay": float(delay),
        "hang": hang,
        "tenant": tenant,
        "retry_after": None if ra is None else str(ra),
        "body": body,
        "accept": bool(doc.get("accept", False)),
    }


def default_fault_body(status: int, tenant: str) -> str:
    if status == 429:
        return (
            f"Ingestion rate limit exceeded for user {tenant or 'fake'} (limit: 4194304 bytes/sec) while attempting to "
            "ingest lines, reduce log volume or contact your Loki administrator to see if the limit can be increased"
        )
    if status >= 500:
        return f"rpc error: code = Unavailable desc = injected fault (status {status})"
    return f"injected fault (status {status})"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "loki-receiver"
    sys_version = ""
    state: State  # set on the subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    # -- helpers ---------------------------------------------------------
    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("eof in chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status: int, body: bytes | str = b"", ctype: str = "text/plain; charset=utf-8", extra: dict | None = None) -> None:
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if status == 204 or status == 304 or status < 200:
            self.end_headers()
            return
        self.send_header("Content-Type", ctype)
        if ctype.startswith("text/plain"):
            self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, orjson.dumps(obj), "application/json")

    # -- routing ----------------------------------------------------------
    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        q = dict(p.split("=", 1) if "=" in p else (p, "") for p in query.split("&") if p)
        from urllib.parse import unquote

        q = {unquote(k): unquote(v) for k, v in q.items()}
        st = self.state
        if path == "/ready":
            self._send(200, "ready\n")
        elif path == "/entries":
            with st.lock:
                items = st.entries[int(q.get("offset", 0) or 0):]
                if "tenant" in q:
                    items = [e for e in items if e["tenant"] == q["tenant"]]
                self._json(items)
        elif path == "/requests":
            with st.lock:
                self._json(st.requests[int(q.get("offset", 0) or 0):])
        elif path == "/stats":
            with st.lock:
                self._json(
                    {
                        "requests": st.n_requests,
                        "entries": len(st.entries),
                        "rejected": st.n_rejected,
                        "rejected_entries": st.n_rejected_entries,
                        "injected": st.n_injected,
                        "hanging": st.hanging,
                        "by_tenant": st.by_tenant,
                    }
                )
        elif path == "/control":
            with st.lock:
                self._json({"rules": st.rules, "limits": st.limits})
        elif path == PUSH_PATH:
            self._send(405, "405 method not allowed\n")
        else:
            self._send(404, "404 page not found\n")

    def do_POST(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            return
        path = self.path.partition("?")[0]
        st = self.state
        if path == PUSH_PATH:
            self._push(body)
        elif path == "/reset":
            st.reset()
            self._json({"ok": True})
        elif path == "/control":
            try:
                doc = orjson.loads(body) if body else {}
                if isinstance(doc, dict) and doc.get("clear"):
                    st.clear_rules()
                    self._json({"ok": True, "cleared": True})
                    return
                rule = parse_rule(doc)
            except (ValueError, orjson.JSONDecodeError) as e:
                self._send(400, f"{e}\n")
                return
            with st.lock:
                st.rules.append(rule)
            self._json({"ok": True, "rule": rule})
        else:
            self._send(404, "404 page not found\n")

    def _push(self, body: bytes) -> None:
        st = self.state
        hdrs = {h: self.headers.get(h) for h in HEADERS_OF_INTEREST}
        tenant, terr, tstatus = validate_tenant(self.headers.get("X-Scope-OrgID"), st.limits["require_tenant"])
        rec = {
            "id": 0,
            "tenant": tenant,
            "headers": hdrs,
            "bytes": len(body),
            "status": None,
            "accepted": 0,
            "discarded": 0,
            "error": None,
            "injected": False,
            "time": time.time(),
        }
        with st.lock:
            st.n_requests += 1
            rec["id"] = st.n_requests
            st.requests.append(rec)
            st.tenant_stats(tenant)["requests"] += 1

        rule = st.take_rule(tenant)
        if rule is not None:
            if rule["hang"]:
                with st.lock:
                    st.hanging += 1
                    rec["injected"] = True
                    rec["status"] = "hang"
                    st.n_injected += 1
                    st.tenant_stats(tenant)["injected"] += 1
                try:
                    rule["_release"].wait()
                finally:
                    with st.lock:
                        st.hanging -= 1
                self.close_connection = True  # released: drop the connection, no answer
                return
            if rule["delay"]:
                if rule["_release"].wait(rule["delay"]):
                    self.close_connection = True
                    return
            if rule["status"] is not None:
                status = rule["status"]
                accepted: list = []
                if rule["accept"] and terr is None:
                    _, _, accepted, _ = process_push(body, hdrs["content-type"], hdrs["content-encoding"], st.limits, st.label_cache)
                with st.lock:
                    self._record(rec, tenant, accepted)
                    rec["injected"] = True
                    rec["status"] = status
                    st.n_injected += 1
                    st.tenant_stats(tenant)["injected"] += 1
                extra = {"Retry-After": rule["retry_after"]} if rule["retry_after"] is not None else None
                msg = rule["body"] if rule["body"] is not None else default_fault_body(status, tenant)
                self._send(status, msg if msg.endswith("\n") or not msg else msg + "\n", extra=extra)
                return

        if terr is not None:
            status, msg, accepted, discarded = tstatus, terr, [], 0
        else:
            status, msg, accepted, discarded = process_push(
                body, hdrs["content-type"], hdrs["content-encoding"], st.limits, st.label_cache
            )
        with st.lock:
            self._record(rec, tenant, accepted)
            rec["status"] = status
            rec["discarded"] = discarded
            st.n_rejected_entries += discarded
            if status >= 400:
                rec["error"] = msg
                st.n_rejected += 1
                st.tenant_stats(tenant)["rejected"] += 1
        if status == 204:
            self._send(204)
        else:
            self._send(status, msg + "\n")

    def _record(self, rec: dict, tenant: str, accepted: list) -> None:
        st = self.state
        for ldict, raw, ts, line, sm in accepted:
            st.entries.append(
                {"tenant": tenant, "labels": ldict, "labels_raw": raw, "ts": ts, "line": line, "metadata": sm, "req": rec["id"]}
            )
        rec["accepted"] = len(accepted)
        st.tenant_stats(tenant)["entries"] += len(accepted)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, BrokenPipeError, TimeoutError):
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def make_server(host: str, port: int, limits: dict | None = None) -> Server:
    lim = dict(DEFAULT_LIMITS)
    lim.update(limits or {})
    state = State(lim)
    handler = type("BoundHandler", (Handler,), {"state": state})
    srv = Server((host, port), handler)
    srv.state = state  # type: ignore[attr-defined]
    return srv


def _duration(s: str) -> float:
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|m|h|d|w)?\s*", s)
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration {s!r}")
    mult = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}[m.group(2)]
    return float(m.group(1)) * mult


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Loki push endpoint stand-in for tests")
    ap.add_argument("--port", type=int, required=True, help="0 = pick a free port and print 'PORT <n>' on stdout")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--max-line-size", type=int, default=DEFAULT_LIMITS["max_line_size"], help="bytes; 0 = unlimited")
    ap.add_argument("--max-label-names-per-series", type=int, default=DEFAULT_LIMITS["max_label_names_per_series"])
    ap.add_argument("--max-label-name-length", type=int, default=DEFAULT_LIMITS["max_label_name_length"])
    ap.add_argument("--max-label-value-length", type=int, default=DEFAULT_LIMITS["max_label_value_length"])
    ap.add_argument("--no-reject-old-samples", action="store_true", help="accept entries of any age")
    ap.add_argument("--reject-old-samples-max-age", type=_duration, default=DEFAULT_LIMITS["reject_old_samples_max_age"])
    ap.add_argument("--creation-grace-period", type=_duration, default=DEFAULT_LIMITS["creation_grace_period"])
    ap.add_argument("--disallow-structured-metadata", action="store_true")
    ap.add_argument("--max-structured-metadata-size", type=int, default=DEFAULT_LIMITS["max_structured_metadata_size"])
    ap.add_argument("--max-structured-metadata-entries-count", type=int, default=DEFAULT_LIMITS["max_structured_metadata_entries_count"])
    ap.add_argument("--require-tenant", action="store_true", help="401 'no org id' without X-Scope-OrgID")
    ap.add_argument("--allow-invalid-utf8", action="store_true", help="accept invalid UTF-8 in protobuf strings (as Loki does)")
    a = ap.parse_args(argv)
    limits = {
        "max_line_size": a.max_line_size,
        "max_label_names_per_series": a.max_label_names_per_series,
        "max_label_name_length": a.max_label_name_length,
        "max_label_value_length": a.max_label_value_length,
        "reject_old_samples": not a.no_reject_old_samples,
        "reject_old_samples_max_age": a.reject_old_samples_max_age,
        "creation_grace_period": a.creation_grace_period,
        "allow_structured_metadata": not a.disallow_structured_metadata,
        "max_structured_metadata_size": a.max_structured_metadata_size,
        "max_structured_metadata_entries_count": a.max_structured_metadata_entries_count,
        "require_tenant": a.require_tenant,
        "allow_invalid_utf8": a.allow_invalid_utf8,
    }
    _proto()  # build the schema before serving
    srv = make_server(a.host, a.port, limits)
    if a.port == 0:
        print(f"PORT {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


# --------------------------------------------------------------------------
# Test-side client.
# --------------------------------------------------------------------------


class Receiver:
    """Client for a loki_receiver subprocess.

    >>> rx = Receiver.start()            # spawns the process on a free port
    >>> rx.url                           # http://127.0.0.1:PORT/loki/api/v1/push
    >>> rx.fail(500, count=2); rx.wait_for(10); rx.entries(); rx.stop()

    ``start(**limits)`` passes options to the CLI, e.g.
    ``Receiver.start(no_reject_old_samples=True, max_line_size=1000)``.
    """

    def __init__(self, proc: subprocess.Popen, host: str, port: int, stderr_path: str | None = None):
        import httpx

        self.proc = proc
        self.host = host
        self.port = port
        self.base_url = f"http://{host}:{port}"
        self.url = self.base_url + PUSH_PATH
        self._stderr_path = stderr_path
        self._http = httpx.Client(base_url=self.base_url, timeout=10.0)
        atexit.register(self.stop)

    # -- lifecycle ----------------------------------------------------------
    @classmethod
    def start(cls, port: int | None = None, host: str = "127.0.0.1", timeout: float = 15.0, **options: Any) -> "Receiver":
        args = [sys.executable, os.path.abspath(__file__), "--port", str(port or 0), "--host", host]
        for k, v in options.items():
            flag = "--" + k.replace("_", "-")
            if v is True:
                args.append(flag)
            elif v is False or v is None:
                continue
            else:
                args += [flag, str(v)]
        fd, errpath = tempfile.mkstemp(prefix="loki_receiver_", suffix=".stderr")
        errf = os.fdopen(fd, "wb")
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL)
        errf.close()
        deadline = time.monotonic() + timeout

        def fail(why: str) -> None:
            try:
                proc.kill()
            except OSError:
                pass
            proc.wait()
            with open(errpath, "rb") as f:
                err = f.read().decode(errors="replace")
            os.unlink(errpath)
            raise RuntimeError(f"loki_receiver did not start: {why}\n{err}")

        actual = port
        if not port:
            assert proc.stdout is not None
            buf = b""
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    fail("timeout waiting for the port")
                r, _, _ = select.select([proc.stdout], [], [], left)
                if r:
                    chunk = os.read(proc.stdout.fileno(), 4096)
                    if not chunk:
                        fail("process exited")
                    buf += chunk
            line = buf.split(b"\n", 1)[0].decode()
            if not line.startswith("PORT "):
                fail(f"unexpected output {line!r}")
            actual = int(line.split()[1])
        rx = cls(proc, host, int(actual), errpath)  # type: ignore[arg-type]
        while True:
            if proc.poll() is not None:
                rx._http.close()
                fail("process exited")
            try:
                if rx._http.get("/ready", timeout=1.0).status_code == 200:
                    return rx
            except Exception:
                pass
            if time.monotonic() > deadline:
                rx._http.close()
                fail("timeout waiting for /ready")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            self._http.close()
        except Exception:
            pass
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._stderr_path and os.path.exists(self._stderr_path):
            os.unlink(self._stderr_path)
        self._stderr_path = None

    def __enter__(self) -> "Receiver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    # -- inspection ---------------------------------------------------------
    def entries(self, tenant: str | None = None, offset: int = 0) -> list[dict]:
        """Accepted entries: dicts with tenant, labels (dict), labels_raw, ts
        (ns int), line, metadata (dict), req (request id)."""
        params: dict[str, Any] = {"offset": offset}
        if tenant is not None:
            params["tenant"] = tenant
        r = self._http.get("/entries", params=params)
        r.raise_for_status()
        return orjson.loads(r.content)

    def lines(self, tenant: str | None = None) -> list[str]:
        return [e["line"] for e in self.entries(tenant)]

    def requests(self) -> list[dict]:
        """One dict per push: id, tenant, headers (authorization, user-agent,
        x-scope-orgid, content-type, content-encoding), bytes, status (int,
        or "hang"), accepted, discarded, error, injected, time."""
        r = self._http.get("/requests")
        r.raise_for_status()
        return orjson.loads(r.content)

    def stats(self) -> dict:
        r = self._http.get("/stats")
        r.raise_for_status()
        return orjson.loads(r.content)

    def wait_for(self, n_entries: int, timeout: float = 10.0, tenant: str | None = None) -> list[dict]:
        """Poll until at least n_entries are recorded (for tenant, if given);
        returns the entries. Raises TimeoutError with the stats otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats()
            have = s["entries"] if tenant is None else s["by_tenant"].get(tenant, {}).get("entries", 0)
            if have >= n_entries:
                return self.entries(tenant)
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {n_entries} entries, have {have}; stats={s}")
            time.sleep(0.02)

    # -- faults -------------------------------------------------------------
    def control(self, **rule: Any) -> dict:
        r = self._http.post("/control", content=orjson.dumps(rule))
        if r.status_code != 200:
            raise ValueError(r.text)
        return orjson.loads(r.content)

    def fail(self, status: int, count: int | None = 1, *, tenant: str | None = None, retry_after: Any = None,
             delay: float = 0, body: str | None = None, accept: bool = False) -> dict:
        """Answer the next ``count`` pushes (None = until reset) with
        ``status``. ``accept=True`` stores the entries anyway (Loki wrote the
        data but the client saw an error)."""
        return self.control(status=status, count=count, tenant=tenant, retry_after=retry_after, delay=delay,
                            body=body, accept=accept)

    def delay(self, seconds: float, count: int | None = None, *, tenant: str | None = None) -> dict:
        """Sleep before handling the next ``count`` pushes (None = until reset)."""
        return self.control(delay=seconds, count=count, tenant=tenant)

    def hang(self, count: int | None = None, *, tenant: str | None = None) -> dict:
        """Never answer the next ``count`` pushes (None = all) until reset()
        or clear_faults(); then their connections are closed unanswered."""
        return self.control(hang=True, count=count, tenant=tenant)

    def clear_faults(self) -> None:
        """Drop fault rules and release hung requests; keep recorded data."""
        self._http.post("/control", content=b'{"clear": true}').raise_for_status()

    def reset(self) -> None:
        self._http.post("/reset").raise_for_status()


if __name__ == "__main__":
    sys.exit(main())
