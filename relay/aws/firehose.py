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

Settings of the `aws_firehose` job kind (its routes: `relay.sources.http.firehose`):

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

Default relabel rules (a job without `relabel_configs`; Alloy has none and would send the
entries with no labels at all). All low cardinality: the request id, the log stream and the
matched filters are never made labels by default.

    delivery_stream  <- __aws_firehose_source_arn, the name after `deliverystream/`
    log_group        <- __aws_cw_log_group
    owner            <- __aws_owner (the AWS account id)
    job              <- "aws_firehose", only when the entry has no `job` label (static `labels`
                        are applied before the rules, so `labels: {job: x}` wins)
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson

from .. import relabel
from ..compress import GZIP_MAGIC, Budget, BudgetExceeded
from ..keys import ConfigError, Keys, read_secret_file
from ..model import LABEL_NAME, Labels, Stream, known_times, new_streams, new_streams_ms
from .cloudwatch import CloudWatchPayload, PayloadError, gunzip
from .cloudwatch import parse as parse_cloudwatch

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
_FIRST = itemgetter(0)
_LAST = itemgetter(1)

# Labels from a CloudWatch Logs envelope, in the order of the grouping key built below.
_CW_LABELS = (
    "__aws_owner",
    "__aws_cw_log_group",
    "__aws_cw_log_stream",
    "__aws_cw_matched_filters",
    "__aws_cw_msg_type",
)

KIND = "aws_firehose"
DEFAULT_PORT = 3700  # beside the push API's 3500 and Lambda events' 3600


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
    digest: str = ""  # of the records' data and the common attributes: a retry has the same
    times: tuple[int, int] | None = None  # earliest and latest entry time (Unix ns), for the time window


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
    `receive_ns`; entries stamped so get successive nanoseconds (Loki would merge equal lines
    of equal times). `max_size` also caps each record's decompressed CloudWatch payload, and
    all of them together: a record over either is skipped as `too-large`.
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
    attr_labels, attr_tenant, invalid = common_attributes(hdr.get(COMMON_ATTRIBUTES_HEADER.lower(), ""))
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
    budget = Budget(max_size)

    # Entries grouped by label set: None for Direct PUT, else the CloudWatch envelope. Times are
    # Unix ns, but CloudWatch events at their own time stay in Unix ms until made into entries.
    groups: dict[tuple[str, ...] | None, list[tuple[int, str]]] = {}
    spans: list[tuple[int, int]] = []  # earliest and latest entry time of each record that has entries
    skipped = batch.skipped
    # The retry digest: the common attributes and each record's decoded bytes (a quarter fewer
    # than their base64), each after its length. SHA-256 has hardware support on current x86 and
    # ARM servers: twice BLAKE2b's speed on ours.
    attributes = hdr.get(COMMON_ATTRIBUTES_HEADER.lower(), "").encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(b"a%d:%s" % (len(attributes), attributes))
    for rec in records:
        data = rec.get("data") if isinstance(rec, dict) else None
        if not isinstance(data, str):
            raise FirehoseError("every record must be an object with a string `data`", request_id)
        try:
            raw = binascii.a2b_base64(data, strict_mode=True)
        except (binascii.Error, ValueError):  # ValueError: non-ASCII text
            skipped[SKIP_BASE64] = skipped.get(SKIP_BASE64, 0) + 1
            undecoded = data.encode("utf-8", "surrogatepass")
            digest.update(b"t%d:" % len(undecoded))  # the text as is, told apart from decoded bytes
            digest.update(undecoded)
            continue
        digest.update(b"b%d:" % len(raw))
        digest.update(raw)

        if raw[:2] != GZIP_MAGIC:  # Direct PUT
            text = raw.decode("utf-8", "replace")
            if split_lines:
                lines = [ln[:-1] if ln[-1:] == "\r" else ln for ln in text.split("\n") if ln and ln != "\r"]
                entries = list(zip(range(put_ns, put_ns + len(lines)), lines, strict=True))
            else:
                entries = [(put_ns, text)] if text else []
            if entries:
                groups.setdefault(None, []).extend(entries)
                spans.append((put_ns, put_ns + len(entries) - 1))
                put_ns += len(entries)
            else:
                skipped[SKIP_EMPTY] = skipped.get(SKIP_EMPTY, 0) + 1
            continue

        payload = _cloudwatch(raw, budget)
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
            events = payload.events
            if payload.times_ms is not None:
                spans.append((payload.times_ms[0] * _MS, payload.times_ms[1] * _MS))
        else:
            events = list(zip(range(receive_ns, receive_ns + len(payload.events)), (m for _, m in payload.events), strict=True))
            if events:
                spans.append((receive_ns, receive_ns + len(events) - 1))
            receive_ns += len(events)
        groups.setdefault(key, []).extend(events)

    batch.digest = digest.hexdigest()
    for group, entries in groups.items():
        labels = dict(base)
        if group is not None:
            for name, value in zip(_CW_LABELS, group, strict=True):
                if value:  # like Alloy (Prometheus' labels.Builder): an empty value is no label
                    labels[name] = value
        ms = use_incoming_timestamp and group is not None
        batch.streams.extend(new_streams_ms(labels, entries) if ms else new_streams(labels, entries))
        batch.entries += len(entries)
    if spans:  # the records' own bounds spare the time window a parse of the encoded entries
        batch.times = known_times((min(map(_FIRST, spans)), max(map(_LAST, spans))))
    return batch


def _cloudwatch(raw: bytes, budget: Budget) -> CloudWatchPayload | str:
    """The CloudWatch Logs payload in gzip'd `raw`, or why it is not one (a skip reason).

    Over the limit, alone or with the request's earlier records, the record is skipped, not
    the request refused: Firehose would retry the same records again and again."""
    try:
        plain = gunzip(raw, budget)
    except (OverflowError, BudgetExceeded):
        return SKIP_TOO_LARGE
    except PayloadError:
        return SKIP_GZIP
    try:
        return parse_cloudwatch(plain, budget)
    except (OverflowError, BudgetExceeded):  # gzip inside the gzip
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


def common_attributes(value: str) -> tuple[Labels, str | None, int]:
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


@dataclass(slots=True)
class FirehoseSettings:
    access_key: str = ""  # "" = no check
    split_lines: bool = False


def parse_block(k: Keys) -> FirehoseSettings:
    """The keys of an `aws_firehose` block beyond those every job kind shares."""
    key = k.get_str("access_key")
    if k.has("access_key_file"):
        if key:
            raise ConfigError(f"{k.path}: access_key and access_key_file are mutually exclusive")
        path = k.get_str("access_key_file")
        key = read_secret_file(path, k.at("access_key_file"))
        if not key:
            raise ConfigError(f"{k.at('access_key_file')}: {path} is empty")
    return FirehoseSettings(access_key=key, split_lines=k.get_bool("split_lines"))
