"""Amazon Data Firehose HTTP-endpoint deliveries, decoded into streams.

Pure parsing, no I/O. The wire format (AWS "HTTP endpoint delivery request and
response specifications", protocol version 1.0):

    POST body   {"requestId": str, "timestamp": unix ms, "records": [{"data": base64}, ...]}
                optionally gzip'd as a whole (Content-Encoding: gzip)
    headers     X-Amz-Firehose-Request-Id, X-Amz-Firehose-Source-Arn,
                X-Amz-Firehose-Access-Key, X-Amz-Firehose-Common-Attributes
    response    {"requestId": str, "timestamp": unix ms[, "errorMessage": str]}

Each record is one of:

- a CloudWatch Logs subscription payload (the decoded bytes are gzip): one entry per
  log event, labelled with the envelope (`__aws_owner`, `__aws_cw_*`). CONTROL_MESSAGE
  payloads (CloudWatch checking the destination) are counted and dropped;
- a Direct PUT record (anything else): its bytes are one line, or one line per
  newline-separated line with `split_lines`.

A record that cannot be decoded is skipped and counted by reason; it never fails the
batch, since Firehose would retry the whole batch forever. Label names and skip reasons
are those of Grafana Alloy's `loki.source.awsfirehose`: `__aws_firehose_request_id`,
`__aws_firehose_source_arn`, and one label per `lbl_<name>` common attribute. The tenant
(common attribute `tenant_id`) is returned beside the streams, not as a label.

The job kind `aws_firehose` (bottom of this module) serves `POST /awsfirehose/api/v1/push`:

    scrape_configs:
      - job_name: firehose
        aws_firehose:
          server: {http_listen_port: 3700}   # the default; Firehose needs HTTPS: server.http_tls_config, or a proxy
          access_key: secret                 # or access_key_file; none: no check
          use_incoming_timestamp: false      # true: CloudWatch event / Firehose request times
          max_send_msg_size: 100MiB          # body, and each record's decompressed payload
          split_lines: false                 # true: a Direct PUT record gives one entry per line
          labels: {...}
          relabel_configs: [...]             # given (even empty): the default rules are off

Answers (always `Content-Type: application/json`, `{"requestId", "timestamp"[, "errorMessage"]}`):
200 all decodable records accepted (undecodable ones are skipped and counted); 400 malformed
body, invalid tenant, or some streams refused (bad labels; the rest was ingested, and a retry
of that request id gets the same 400 without ingesting again); 401 access key missing or
wrong; 413 over max_send_msg_size; 503 the relay cannot take it now (Firehose retries).

Retries: the ids of the last 10,000 requests answered 200 (or 400 after a partial ingest) are
remembered per job, and a request with such an id gets that answer again without being
ingested. A request still in flight makes a concurrent retry of it wait for its outcome.

Default relabel rules (a job without `relabel_configs`; Alloy has none and would send the
entries with no labels at all). All low cardinality: the request id, the log stream and the
matched filters are never made labels by default.

    delivery_stream  <- __aws_firehose_source_arn, the name after `deliverystream/`
    log_group        <- __aws_cw_log_group
    owner            <- __aws_owner (the AWS account id)
    job              <- "aws_firehose", only when the entry has no `job` label (static `labels`
                        are applied before the rules, so `labels: {job: x}` wins)

Metrics: loki_relay_firehose_records_total{job}, ..._records_skipped_total{job,reason},
..._control_messages_total{job}, ..._duplicate_requests_total{job},
..._invalid_common_attributes_total{job}; requests refused with 503 are counted by the relay's
loki_relay_backpressure_requests_total{job,reason} (checked before decoding, so they stay cheap).
"""

from __future__ import annotations

import asyncio
import binascii
import hmac
import logging
import re
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import relabel
from ..config import ConfigError, JobConfig, Keys, common_job_keys
from ..ingest import Backpressure, Ingest
from ..sink.fanout import Ticket
from ..metrics import REGISTRY
from ..model import LABEL_NAME, Labels, Stream, new_stream
from .cloudwatch import GZIP_MAGIC, CloudWatchPayload, PayloadError, gunzip
from .cloudwatch import parse as parse_cloudwatch
from .http import BadRequest, BodyTooLarge, read_body
from .listener import observe
from .registry import SourceKind, register

log = logging.getLogger("relay.firehose")

REQUEST_ID_HEADER = "X-Amz-Firehose-Request-Id"
SOURCE_ARN_HEADER = "X-Amz-Firehose-Source-Arn"
ACCESS_KEY_HEADER = "X-Amz-Firehose-Access-Key"
COMMON_ATTRIBUTES_HEADER = "X-Amz-Firehose-Common-Attributes"
TENANT_HEADER = "X-Scope-OrgID"

REQUEST_ID_LABEL = "__aws_firehose_request_id"  # never a label by default: unique per request
LABEL_PREFIX = "lbl_"  # common attributes named lbl_<name> become label <name>
TENANT_ATTRIBUTE = "tenant_id"  # the common attribute that names the tenant

# Why a record was skipped (FirehoseBatch.skipped keys). The first three are Alloy's
# `reason` values of loki_source_awsfirehose_record_errors.
SKIP_BASE64 = "base64-decode"  # `data` is not standard, padded base64
SKIP_GZIP = "gzip-deflate"  # starts with the gzip magic but does not decompress
SKIP_CLOUDWATCH = "cw-json-decode"  # decompresses, but is not a CloudWatch Logs payload
SKIP_TOO_LARGE = "too-large"  # decompresses to more than max_size bytes
SKIP_EMPTY = "empty"  # a Direct PUT record with no line in it

_MS = 1_000_000  # nanoseconds per millisecond

# Labels from a CloudWatch Logs envelope, in the order of the grouping key built below.
_CW_LABELS = (
    "__aws_owner",
    "__aws_cw_log_group",
    "__aws_cw_log_stream",
    "__aws_cw_matched_filters",
    "__aws_cw_msg_type",
)

DEFAULT_FIREHOSE_PORT = 3700  # beside the push API's 3500 and Lambda events' 3600


class FirehoseError(ValueError):
    """The request is malformed (answer 400). `request_id` is the best one known."""

    def __init__(self, message: str, request_id: str = "") -> None:
        super().__init__(message)
        self.request_id = request_id


class FirehoseTooLarge(OverflowError):
    """The body, once decompressed, exceeds max_size (answer 413)."""

    def __init__(self, message: str, request_id: str = "") -> None:
        super().__init__(message)
        self.request_id = request_id


@dataclass(slots=True)
class FirehoseBatch:
    request_id: str  # header, else body, else ""
    source_arn: str
    tenant: str | None  # common attribute tenant_id, else X-Scope-OrgID, else None
    streams: list[Stream]  # one per distinct label set
    records: int  # records in the request
    entries: int = 0  # entries in `streams`
    control_messages: int = 0  # CloudWatch CONTROL_MESSAGE records (not ingested)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> records
    invalid_attributes: int = 0  # common attributes ignored (bad JSON, unusable lbl_ name)


def parse_request(
    body: bytes,
    headers: Mapping[str, str],
    *,
    receive_ns: int,
    use_incoming_timestamp: bool,
    split_lines: bool = False,
    max_size: int,
) -> FirehoseBatch:
    """Decode one delivery request into streams.

    Raises FirehoseError (400) for a malformed body and FirehoseTooLarge (413) when the
    body exceeds `max_size` bytes after decompression. Header names are matched without
    regard to case. Timestamps: CloudWatch events use their own ms timestamp and Direct
    PUT records the request's `timestamp` when `use_incoming_timestamp`, else
    `receive_ns`. `max_size` also caps each record's decompressed CloudWatch payload.
    """
    hdr = {k.lower(): v for k, v in headers.items()}
    header_id = hdr.get(REQUEST_ID_HEADER.lower(), "")
    doc = _load_body(body, hdr.get("content-encoding", ""), max_size, header_id)
    body_id = doc.get("requestId")
    request_id = header_id or (body_id if isinstance(body_id, str) else "")
    records = doc.get("records")
    if not isinstance(records, list):
        raise FirehoseError("request body has no records list", request_id)

    source_arn = hdr.get(SOURCE_ARN_HEADER.lower(), "")
    attr_labels, attr_tenant, invalid = _common_attributes(hdr.get(COMMON_ATTRIBUTES_HEADER.lower(), ""))
    batch = FirehoseBatch(
        request_id=request_id,
        source_arn=source_arn,
        tenant=attr_tenant or hdr.get(TENANT_HEADER.lower()) or None,
        streams=[],
        records=len(records),
        invalid_attributes=invalid,
    )
    base: Labels = {}
    if request_id:
        base[REQUEST_ID_LABEL] = request_id
    if source_arn:
        base["__aws_firehose_source_arn"] = source_arn
    base.update(attr_labels)

    put_ns = receive_ns
    body_ts = doc.get("timestamp")
    if use_incoming_timestamp and type(body_ts) is int:
        put_ns = body_ts * _MS

    # Entries grouped by label set: None for Direct PUT, else the CloudWatch envelope.
    groups: dict[tuple[str, ...] | None, list[tuple[int, str]]] = {}
    skipped = batch.skipped
    for rec in records:
        data = rec.get("data") if isinstance(rec, dict) else None
        if not isinstance(data, str):
            raise FirehoseError("every record must be an object with a string `data`", request_id)
        try:
            raw = binascii.a2b_base64(data, strict_mode=True)
        except (binascii.Error, ValueError):  # ValueError: non-ASCII text
            skipped[SKIP_BASE64] = skipped.get(SKIP_BASE64, 0) + 1
            continue

        if raw[:2] != GZIP_MAGIC:  # Direct PUT
            text = raw.decode("utf-8", "replace")
            if split_lines:
                lines = [ln[:-1] if ln[-1:] == "\r" else ln for ln in text.split("\n")]
                entries = [(put_ns, ln) for ln in lines if ln]
            else:
                entries = [(put_ns, text)] if text else []
            if entries:
                groups.setdefault(None, []).extend(entries)
            else:
                skipped[SKIP_EMPTY] = skipped.get(SKIP_EMPTY, 0) + 1
            continue

        payload = _cloudwatch(raw, max_size)
        if isinstance(payload, str):
            skipped[payload] = skipped.get(payload, 0) + 1
            continue
        if payload.is_control:
            batch.control_messages += 1
            continue
        key = (
            payload.owner,
            payload.log_group,
            payload.log_stream,
            ",".join(payload.subscription_filters),
            payload.message_type,
        )
        if use_incoming_timestamp:
            events = [(ms * _MS, msg) for ms, msg in payload.events]
        else:
            events = [(receive_ns, msg) for _, msg in payload.events]
        groups.setdefault(key, []).extend(events)

    for key, entries in groups.items():
        labels = dict(base)
        if key is not None:
            for name, value in zip(_CW_LABELS, key):
                if value:  # like Alloy (Prometheus' labels.Builder): an empty value is no label
                    labels[name] = value
        batch.streams.append(new_stream(labels, entries))
        batch.entries += len(entries)
    return batch


def _cloudwatch(raw: bytes, max_size: int) -> CloudWatchPayload | str:
    """The CloudWatch Logs payload in gzip'd `raw`, or why it is not one (a skip reason)."""
    try:
        plain = gunzip(raw, max_size)
    except OverflowError:
        return SKIP_TOO_LARGE
    except PayloadError:
        return SKIP_GZIP
    try:
        return parse_cloudwatch(plain, max_size)
    except OverflowError:  # gzip inside the gzip
        return SKIP_TOO_LARGE
    except PayloadError:
        return SKIP_CLOUDWATCH


def _load_body(body: bytes, encoding: str, max_size: int, request_id: str) -> dict[str, Any]:
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        try:
            body = gunzip(body, max_size)
        except OverflowError:
            raise FirehoseTooLarge(f"decompressed body exceeds {max_size} bytes", request_id) from None
        except PayloadError as e:
            raise FirehoseError(f"Content-Encoding is gzip but the body is not: {e}", request_id) from None
    elif encoding not in ("", "identity"):
        raise FirehoseError(f"unsupported Content-Encoding {encoding!r}", request_id)
    elif len(body) > max_size:
        raise FirehoseTooLarge(f"body exceeds {max_size} bytes", request_id)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise FirehoseError(f"request body is not JSON: {e}", request_id) from None
    if not isinstance(doc, dict):
        raise FirehoseError("request body is not a JSON object", request_id)
    return doc


def _common_attributes(value: str) -> tuple[Labels, str | None, int]:
    """Labels from lbl_* attributes, the tenant_id attribute, and how many were ignored.

    Like Alloy, a header that is not `{"commonAttributes": {str: str, ...}}` is ignored
    whole, and a name that is still invalid once sanitised is dropped.
    """
    if not value:
        return {}, None, 0
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return {}, None, 1
    attrs = doc.get("commonAttributes") if isinstance(doc, dict) else None
    if attrs is None and isinstance(doc, dict):
        attrs = {}
    if not isinstance(attrs, dict) or not all(isinstance(v, str) for v in attrs.values()):
        return {}, None, 1
    labels: Labels = {}
    invalid = 0
    for name, val in attrs.items():
        if not name.startswith(LABEL_PREFIX):
            continue
        label = name[len(LABEL_PREFIX) :]
        if not LABEL_NAME.fullmatch(label):
            label = sanitize_label_name(label)
            if not LABEL_NAME.fullmatch(label):
                invalid += 1
                continue
        labels[label] = val
    return labels, attrs.get(TENANT_ATTRIBUTE) or None, invalid


_TO_UNDERSCORE = frozenset(" ,\t/\\.-:=@<>()\u201c")


def sanitize_label_name(name: str) -> str:
    """Alloy's fix-up for an invalid label name (YACE's promutil.PromString).

    Punctuation in `_TO_UNDERSCORE` becomes `_`, `%` becomes `_percent`, an upper-case
    letter after a lower-case letter or digit gets a `_` before it, and everything is
    lower-cased. The result can still be invalid (a leading digit, other characters).
    """
    out: list[str] = []
    prev = ""
    for c in name:
        if c in _TO_UNDERSCORE:
            out.append("_")
        elif c == "%":
            out.append("_percent")
        else:
            if unicodedata.category(c) == "Lu" and unicodedata.category(prev or " ") in ("Ll", "Nd"):
                out.append("_")
            out.append(c.lower()[0])  # simple case mapping, as Go's unicode.ToLower
        prev = c
    return "".join(out)


def check_access_key(expected: str | None, given: str | None) -> bool:
    """True when no key is configured, or `given` equals it (in constant time)."""
    if not expected:
        return True
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), (given or "").encode("utf-8", "surrogatepass")
    )


def response_body(request_id: str, error: str | None = None) -> bytes:
    """The JSON body Firehose expects back, stamped with the current time in ms."""
    doc: dict[str, Any] = {"requestId": request_id, "timestamp": time.time_ns() // _MS}
    if error is not None:
        doc["errorMessage"] = error
    return orjson.dumps(doc)




# ---- the aws_firehose job kind -------------------------------------------------------

PATH = "/awsfirehose/api/v1/push"
RECENT_REQUESTS = 10_000  # accepted request ids remembered per job, for retries

records_total = Counter(
    "loki_relay_firehose_records_total", "Firehose records received (before decoding).", ["job"], registry=REGISTRY
)
records_skipped = Counter(
    "loki_relay_firehose_records_skipped_total",
    "Firehose records that could not be decoded and were skipped, by reason.",
    ["job", "reason"],
    registry=REGISTRY,
)
control_messages = Counter(
    "loki_relay_firehose_control_messages_total",
    "CloudWatch Logs CONTROL_MESSAGE records received through Firehose (not ingested).",
    ["job"],
    registry=REGISTRY,
)
duplicate_requests = Counter(
    "loki_relay_firehose_duplicate_requests_total",
    "Firehose retries of an already answered request id, answered again without ingesting.",
    ["job"],
    registry=REGISTRY,
)
invalid_attributes = Counter(
    "loki_relay_firehose_invalid_common_attributes_total",
    "Common-attributes headers or lbl_ attributes ignored because they could not be used.",
    ["job"],
    registry=REGISTRY,
)

DEFAULT_RULES = relabel.compile_rules([
    {
        "source_labels": ["__aws_firehose_source_arn"],
        "regex": r"arn:[^:]*:firehose:[^:]*:[^:]*:deliverystream/(.+)",
        "target_label": "delivery_stream",
    },
    {"source_labels": ["__aws_cw_log_group"], "target_label": "log_group"},
    {"source_labels": ["__aws_owner"], "target_label": "owner"},
    # `job` only where it is missing: the regex matches the empty value alone.
    {"source_labels": ["job"], "regex": "", "target_label": "job", "replacement": "aws_firehose"},
])

# dskit's tenant.ValidTenantID, as Loki checks X-Scope-OrgID: refuse here what Loki would refuse later.
_TENANT = re.compile(r"[a-zA-Z0-9!\-_.*'()]{1,150}")


def valid_tenant(tenant: str) -> bool:
    return bool(_TENANT.fullmatch(tenant)) and tenant not in (".", "..")


def answer(status: int, request_id: str, error: str | None = None, headers: dict[str, str] | None = None) -> Response:
    return Response(response_body(request_id, error), status, headers=headers, media_type="application/json")


_NAME_ACTIONS = frozenset({"labelmap", "labeldrop", "labelkeep"})


def sees(rule: relabel.Rule, label: str) -> bool:
    """Whether a relabel rule can read or write `label` (conservatively)."""
    return rule.action in _NAME_ACTIONS or label in rule.source_labels or rule.target_label == label


class RecentRequests:
    """The answers given to recent request ids (an LRU), and the ids being handled right now."""

    def __init__(self, size: int = RECENT_REQUESTS) -> None:
        self.size = size
        self._answers: OrderedDict[str, tuple[int, str | None]] = OrderedDict()
        self._busy: dict[str, asyncio.Event] = {}

    async def claim(self, request_id: str) -> tuple[int, str | None] | None:
        """The answer already given to `request_id`, else None and the id is ours until `release`."""
        while (busy := self._busy.get(request_id)) is not None:
            await busy.wait()  # a retry that overtook the original: wait for its outcome
        done = self._answers.get(request_id)
        if done is not None:
            self._answers.move_to_end(request_id)
            return done
        self._busy[request_id] = asyncio.Event()
        return None

    def release(self, request_id: str, remember: tuple[int, str | None] | None) -> None:
        """End a claim; `remember` is the answer to repeat for retries (None: forget, let a retry ingest)."""
        if remember is not None:
            self._answers[request_id] = remember
            self._answers.move_to_end(request_id)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
        event = self._busy.pop(request_id, None)
        if event is not None:
            event.set()


def routes(ingest: Ingest) -> list[Route]:
    job = ingest.job
    limit = job.max_message_size
    access_key: str = job.options.get("access_key", "")
    split_lines: bool = job.options.get("split_lines", False)
    recent = RecentRequests()
    # The request id is a label (Alloy's name) but differs on every request: when the rules
    # cannot see it, leave it out of the processor's cache key, so label sets are resolved once,
    # not once per request.
    rules = job.relabel if job.has_relabel else DEFAULT_RULES
    rid_in_key = REQUEST_ID_LABEL in job.labels or any(sees(rule, REQUEST_ID_LABEL) for rule in rules)
    m_records = records_total.labels(job.name)
    m_control = control_messages.labels(job.name)
    m_duplicates = duplicate_requests.labels(job.name)
    m_attributes = invalid_attributes.labels(job.name)

    async def _room(headers: Mapping[str, str]) -> Ticket | str:
        """Wait briefly for buffer room before the body is read or decoded; the limit still hit, or "".

        Decoding a 500-record delivery costs tens of milliseconds: under backpressure, refuse
        first. Content-Length stands for the request's size (its entries encode to about as
        many bytes).
        """
        _, attr_tenant, _ = _common_attributes(headers.get(COMMON_ATTRIBUTES_HEADER, ""))
        tenant = attr_tenant or headers.get(TENANT_HEADER) or ""
        length = headers.get("content-length", "")
        try:
            return await ingest.check(tenant, int(length) if length.isdigit() else 0)
        except Backpressure as e:
            return str(e)

    async def handle(batch: FirehoseBatch, receive_ns: int,
                     ticket: Ticket) -> tuple[int, str | None, bool, dict[str, str] | None]:
        """Ingest a decoded batch: status, error, whether a retry must get the same answer, headers."""
        rid = batch.request_id
        m_records.inc(batch.records)
        if batch.control_messages:
            m_control.inc(batch.control_messages)
        if batch.invalid_attributes:
            m_attributes.inc(batch.invalid_attributes)
        if batch.skipped:
            for reason, n in batch.skipped.items():
                records_skipped.labels(job.name, reason).inc(n)
            log.warning(
                "firehose request %s: skipped %d of %d records that could not be decoded (%s)",
                rid, sum(batch.skipped.values()), batch.records,
                ", ".join(f"{reason}: {n}" for reason, n in sorted(batch.skipped.items())),
            )
        tenant = batch.tenant or ""
        if tenant and not valid_tenant(tenant):
            return 400, f"invalid tenant {tenant[:160]!r}", False, None
        if not batch.streams:
            return 200, None, True, None
        if not rid_in_key and rid:
            for stream in batch.streams:
                # Any hashable works as Processor's cache key; these tuples never equal a str key.
                stream.key = tuple(kv for kv in stream.labels.items() if kv[0] != REQUEST_ID_LABEL)  # type: ignore[assignment]
        try:
            outcome = await ingest.push(batch.streams, tenant, receive_ns, ticket)
        except Backpressure as e:
            return 503, str(e) or "the relay cannot take more now", False, {"Retry-After": e.retry_after_header}
        if outcome.errors:
            # The valid streams were taken: a retry must not take them again, and the sender
            # learns what was refused (Firehose then backs the batch up to S3 if configured).
            more = f" (and {len(outcome.errors) - 10} more)" if len(outcome.errors) > 10 else ""
            return 400, "; ".join(outcome.errors[:10]) + more, True, None
        return 200, None, True, None

    async def push(request: Request) -> Response:
        with observe(job.name, "firehose") as done:
            receive_ns = time.time_ns()
            headers = request.headers
            rid = headers.get(REQUEST_ID_HEADER, "")
            if not check_access_key(access_key, headers.get(ACCESS_KEY_HEADER)):
                return done(answer(401, rid, "access key missing or incorrect"))
            claimed = ""
            ticket: Ticket | None = None
            try:
                # Cheap answers first, before the body is even read: a retry already answered,
                # then full buffers (Firehose retries; decoding first would only add load).
                if rid:
                    seen = await recent.claim(rid)
                    if seen is not None:
                        m_duplicates.inc()
                        return done(answer(seen[0], rid, seen[1]))
                    claimed = rid
                got = await _room(headers)
                if isinstance(got, str):
                    return done(answer(503, rid, got, {"Retry-After": "1"}))
                ticket = got
                try:
                    body = await read_body(request, limit)
                except BodyTooLarge as e:
                    return done(answer(413, rid, str(e)))
                except BadRequest as e:
                    return done(answer(400, rid, str(e)))
                try:
                    batch = parse_request(
                        body, headers, receive_ns=receive_ns, use_incoming_timestamp=job.use_incoming_timestamp,
                        split_lines=split_lines, max_size=limit,
                    )
                except FirehoseTooLarge as e:
                    return done(answer(413, e.request_id, str(e)))
                except FirehoseError as e:
                    return done(answer(400, e.request_id, str(e)))
                if not claimed and batch.request_id:  # no header: the id in the body
                    seen = await recent.claim(batch.request_id)
                    if seen is not None:
                        m_duplicates.inc()
                        return done(answer(seen[0], batch.request_id, seen[1]))
                    claimed = batch.request_id
                status, error, remember, extra = await handle(batch, receive_ns, ticket)
                if remember and claimed:
                    recent.release(claimed, (status, error))
                    claimed = ""
                return done(answer(status, batch.request_id, error, extra))
            finally:
                if ticket is not None:
                    ticket.release()
                if claimed:
                    recent.release(claimed, None)

    return [Route(PATH, push, methods=["POST"])]


def parse_block(k: Keys, job: JobConfig) -> None:
    common_job_keys(k, job, DEFAULT_FIREHOSE_PORT, incoming_ts_default=False)
    key = _option_str(k, "access_key")
    if k.has("access_key_file"):
        if key:
            raise ConfigError(f"{k.path}: access_key and access_key_file are mutually exclusive")
        path = _option_str(k, "access_key_file")
        try:
            with open(path, encoding="utf-8") as f:
                key = f.read().strip()
        except OSError as e:
            raise ConfigError(f"{k.at('access_key_file')}: cannot read {path}: {e.strerror}") from None
        if not key:
            raise ConfigError(f"{k.at('access_key_file')}: {path} is empty")
    job.options["access_key"] = key
    split = k.get("split_lines", False)
    if not isinstance(split, bool):
        raise ConfigError(f"{k.at('split_lines')}: expected true or false, got {split!r}")
    job.options["split_lines"] = split


def _option_str(k: Keys, key: str) -> str:
    value = k.get(key)
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        raise ConfigError(f"{k.at(key)}: expected a string, got {value!r}")
    return str(value)


register(SourceKind("aws_firehose", parse_block, routes, DEFAULT_RULES))


__all__ = [
    "ACCESS_KEY_HEADER",
    "COMMON_ATTRIBUTES_HEADER",
    "DEFAULT_RULES",
    "PATH",
    "REQUEST_ID_HEADER",
    "SOURCE_ARN_HEADER",
    "TENANT_HEADER",
    "FirehoseBatch",
    "FirehoseError",
    "FirehoseTooLarge",
    "RecentRequests",
    "check_access_key",
    "parse_request",
    "response_body",
    "sanitize_label_name",
]
