"""AWS Lambda event payloads (what lambda-promtail receives), decoded into streams and S3 work items.

Pure parsing, no I/O: S3 objects are returned as `S3Ref`s for the caller to fetch and read
with `relay.aws.s3logs` (through `relay.aws.s3`). Event kinds are told apart as lambda-promtail does (its
`pkg/event.go`): `awslogs` -> CloudWatch Logs; `detail-type` -> EventBridge; `Records`
-> by the first record's `eventSource` / `EventSource` (aws:s3, aws:sqs, aws:sns,
aws:kinesis); `"Event": "s3:TestEvent"` -> the S3 test notification. An SNS envelope
(`{"Type": "Notification", "Message": ...}`, as SNS delivers to SQS or to an HTTP
subscriber) is recognised too, as kind `sns`.

    kind          what                                      result
    cloudwatch    {"awslogs": {"data": base64 gzip}}        one stream per payload; CONTROL_MESSAGE: nothing
    kinesis       Records[].kinesis.data (base64)           CloudWatch payload (gzip or not): its events;
                                                            anything else: one entry per record, the data as the
                                                            line (one trailing newline trimmed), at the record's
                                                            approximateArrivalTimestamp
    s3            Records[].s3 (ObjectCreated:*)            S3Ref per record; other event names are ignored
    s3_test       {"Event": "s3:TestEvent"}                 nothing
    sqs           Records[].body                            one SqsItem per message (see below)
    sns           Records[].Sns.Message                     the message re-detected, else one entry
    eventbridge   {"detail-type", "source", "detail"...}    S3 "Object Created": an S3Ref; anything else: the
                                                            event as one compact JSON line at its `time`

SQS bodies and SNS messages are re-detected recursively (an S3 notification, an SNS
envelope, an EventBridge event, a CloudWatch Logs event...). A body or message that is
not such an event (plain text, or JSON of another shape) becomes one entry as is.
For SQS, everything a message produced is kept in its `SqsItem` (keyed by `messageId`),
so the caller can report `batchItemFailures` for just the messages it failed on;
`ParsedEvent.streams` / `s3_objects` stay empty for SQS. A message whose body is an event
of a known kind but malformed gets `SqsItem.error` instead of failing the batch.

Labels (the cloudwatch and kinesis names are lambda-promtail's, `pkg/cw.go`, `pkg/kinesis.go`):

    cloudwatch   __aws_log_type="cloudwatch", __aws_cloudwatch_log_group, __aws_cloudwatch_owner,
                 __aws_cloudwatch_log_stream (only with keep_stream)
    kinesis      __aws_log_type="kinesis", __aws_kinesis_event_source_arn, and for a CloudWatch
                 payload also __aws_cloudwatch_log_group, __aws_cloudwatch_owner
                 (+ __aws_cloudwatch_log_stream with keep_stream)
    sqs          __aws_log_type="sqs", __aws_sqs_queue_arn (the record's eventSourceARN);
                 timestamp: attributes.SentTimestamp
    sns          __aws_log_type="sns", __aws_sns_topic_arn (Sns.TopicArn); timestamp: Sns.Timestamp
    eventbridge  __aws_log_type="eventbridge", __aws_eventbridge_source, __aws_eventbridge_detail_type

A label whose value would be empty is left out. An entry whose timestamp is missing or
does not parse gets `receive_ns` and is counted in `ParsedEvent.ts_fallback`.

Errors: a payload that is not an event of a known kind, or whose structure is broken
(no records, a record without its data, bad base64 in `awslogs.data`...), raises
`EventError` (answer 400). Inside a Kinesis batch, a record whose data cannot be decoded
is skipped and counted by reason in `ParsedEvent.skipped` rather than failing the batch
(a failing Kinesis batch is retried and blocks its shard).

Where this differs from lambda-promtail: Kinesis records that are not CloudWatch payloads
are ingested (it dropped them), non-S3 EventBridge events are ingested (it failed),
plain-text SQS/SNS messages are ingested (it failed on non-JSON), S3 records other than
ObjectCreated are ignored (it fetched them), and SQS failures are per message.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import orjson

from ..compress import GZIP_MAGIC, Budget, BudgetExceeded
from ..model import Labels, Stream, known_times, new_streams, new_streams_ms
from ..times import ReceiveClock, iso_ns, receive_clock
from .cloudwatch import CloudWatchPayload, PayloadError, gunzip
from .cloudwatch import parse as parse_cloudwatch

CLOUDWATCH = "cloudwatch"
KINESIS = "kinesis"
S3 = "s3"
S3_TEST = "s3_test"
SQS = "sqs"
SNS = "sns"
EVENTBRIDGE = "eventbridge"
_SNS_ENVELOPE = "sns_envelope"  # an SNS notification as SNS delivers it to SQS or HTTP (kind SNS)

_RECORD_SOURCES = {"aws:s3": S3, "aws:sqs": SQS, "aws:sns": SNS, "aws:kinesis": KINESIS}

# Why a Kinesis record was skipped (ParsedEvent.skipped keys).
SKIP_BASE64 = "base64-decode"
SKIP_GZIP = "gzip-deflate"
SKIP_TOO_LARGE = "too-large"
SKIP_EMPTY = "empty"

MAX_DEPTH = 4  # envelopes within envelopes (SQS -> SNS -> S3 is 2)
DEFAULT_LIMIT = 100 << 20  # bytes a gzip'd payload may decompress to

_MS = 1_000_000
_NS = 1_000_000_000


class EventError(ValueError):
    """Not a Lambda event this relay understands, or a malformed one (answer 400)."""


class EventTooLarge(EventError):
    """A payload inside the event decompresses to more than the limit (answer 413). `total`:
    it is the request's running total that is over, not this payload alone (a smaller batch
    would do)."""

    def __init__(self, message: str, total: bool) -> None:
        super().__init__(message)
        self.total = total


@dataclass(slots=True, frozen=True)
class S3Ref:
    """An S3 object to fetch; `key` is already URL-decoded."""

    bucket: str
    key: str
    region: str = ""  # the bucket's region when the event says (S3 awsRegion, EventBridge region)


@dataclass(slots=True)
class SqsItem:
    """What one SQS message produced; report `message_id` in batchItemFailures if it fails."""

    message_id: str
    streams: list[Stream] = field(default_factory=list)
    s3_objects: list[S3Ref] = field(default_factory=list)
    error: str | None = None  # the body is a malformed event; nothing was produced
    retry: bool = False  # with `error`: the request's decompression budget ran out; retry, do not drop
    times: tuple[int, int] | None = None  # earliest and latest entry time of `streams` (unix ns), if known


@dataclass(slots=True)
class ParsedEvent:
    kind: str  # CLOUDWATCH, KINESIS, S3, S3_TEST, SQS, SNS or EVENTBRIDGE (the outermost envelope)
    streams: list[Stream] = field(default_factory=list)
    s3_objects: list[S3Ref] = field(default_factory=list)
    items: list[SqsItem] = field(default_factory=list)  # SQS only; then streams/s3_objects are empty
    ignored: int = 0  # CONTROL_MESSAGEs, S3 test events, S3 records other than ObjectCreated
    ts_fallback: int = 0  # entries given receive_ns because their own time was missing or bad
    skipped: dict[str, int] = field(default_factory=dict)  # Kinesis records dropped, by reason
    times: tuple[int, int] | None = None  # earliest and latest entry time of `streams` (unix ns), if known


class _Ctx:
    """Settings and counters shared by one parse."""

    __slots__ = ("budget", "clock", "ignored", "keep_stream", "skipped", "ts_fallback")

    def __init__(self, keep_stream: bool, clock: ReceiveClock, limit: int) -> None:
        self.keep_stream = keep_stream
        self.clock = clock
        self.budget = Budget(limit)  # every payload of the event draws on it
        self.ignored = 0
        self.ts_fallback = 0
        self.skipped: dict[str, int] = {}

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def time(self, ns: int | None) -> int:
        if ns is None:
            self.ts_fallback += 1
            return self.clock.take()
        return ns


class _Out:
    """Entries grouped by label set, and S3 objects, for one result (the event, or one SQS message).
    Entry times are Unix ns, or Unix ms in the groups of CloudWatch events (`ms`: they are made
    into entries straight from their milliseconds). `times`: the earliest and latest time (ns) of
    all its entries, kept as they are added (the time window then need not read them again)."""

    __slots__ = ("groups", "s3", "times")

    def __init__(self) -> None:
        self.groups: dict[tuple[bool, tuple[tuple[str, str], ...]], tuple[Labels, list[tuple[int, str]]]] = {}
        self.s3: list[S3Ref] = []
        self.times: tuple[int, int] | None = None

    def add(self, labels: Labels, ts: int, line: str) -> None:
        self.entries(labels).append((ts, line))
        self.widen(ts, ts)

    def widen(self, first: int, last: int) -> None:
        """Count entries from `first` to `last` (unix ns) in `times`."""
        t = self.times
        self.times = (first, last) if t is None else (min(t[0], first), max(t[1], last))

    def bounds(self) -> tuple[int, int] | None:
        """`times`, when the streams will hold them: new_stream may replace a time outside
        int64 ns (with the current time), so then they are not known."""
        return known_times(self.times)

    def entries(self, labels: Labels, ms: bool = False) -> list[tuple[int, str]]:
        labels = {k: v for k, v in labels.items() if v}
        key = (ms, tuple(sorted(labels.items())))
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = (labels, [])
        return group[1]

    def merge(self, other: _Out) -> None:
        for (ms, _), (labels, entries) in other.groups.items():
            self.entries(labels, ms).extend(entries)
        self.s3.extend(other.s3)
        if other.times is not None:
            self.widen(*other.times)

    def streams(self) -> list[Stream]:
        return [s for (ms, _), (labels, entries) in self.groups.items() if entries
                for s in (new_streams_ms(labels, entries) if ms else new_streams(labels, entries))]


# --- helpers ----------------------------------------------------------------------------


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EventError(f"{what} is not an object")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise EventError(f"{what} is missing or not a string")
    return value


def _b64(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except ValueError as e:  # non-ASCII text raises a plain ValueError, not binascii.Error
        raise binascii.Error(str(e)) from None


def _text(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    return text


def _seconds_ns(value: Any) -> int | None:
    """Unix seconds as a JSON number (Kinesis approximateArrivalTimestamp) -> ns, keeping the decimals."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return value * _NS
    text = repr(value)
    if "e" in text or "n" in text:  # exponent, inf, nan
        return round(value * _NS) if value == value and abs(value) < 1e11 else None
    whole, _, frac = text.partition(".")
    ns = int(whole) * _NS
    f = int(frac[:9].ljust(9, "0")) if frac else 0
    return ns - f if value < 0 else ns + f


def _ms_ns(value: Any) -> int | None:
    """Unix ms as a string or number (SQS SentTimestamp) -> ns."""
    if isinstance(value, str) and value.isdigit():
        return int(value) * _MS
    if isinstance(value, int) and not isinstance(value, bool):
        return value * _MS
    return None


def _records(doc: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
    """The Records list, every one an object (and of `kind`'s eventSource when given)."""
    records = doc.get("Records")
    if not isinstance(records, list) or not records:
        raise EventError("Records is empty or not a list")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise EventError(f"Records[{i}] is not an object")
        if kind is not None and _record_source(rec) != kind:
            raise EventError(f"Records[{i}] has another eventSource than Records[0]")
    return records


def _record_source(rec: dict[str, Any]) -> str | None:
    source = rec.get("eventSource", rec.get("EventSource"))
    return _RECORD_SOURCES.get(source) if isinstance(source, str) else None


def _kind(doc: Any) -> str | None:
    """The event kind, or None when `doc` is not a recognisable event."""
    if not isinstance(doc, dict):
        return None
    if "awslogs" in doc:
        return CLOUDWATCH
    if "detail-type" in doc and "source" in doc:
        return EVENTBRIDGE
    if "Records" in doc:
        records = doc["Records"]
        if isinstance(records, list) and records and isinstance(records[0], dict):
            return _record_source(records[0])
        return None
    if doc.get("Event") == "s3:TestEvent":
        return S3_TEST
    if doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return _SNS_ENVELOPE
    return None


# --- event kinds ------------------------------------------------------------------------


def _add_cloudwatch(p: CloudWatchPayload, labels: Labels, ctx: _Ctx, out: _Out) -> None:
    if p.is_control:
        ctx.ignored += 1
        return
    labels["__aws_cloudwatch_log_group"] = p.log_group
    labels["__aws_cloudwatch_owner"] = p.owner
    if ctx.keep_stream:
        labels["__aws_cloudwatch_log_stream"] = p.log_stream
    entries = out.entries(labels, ms=True)
    if p.times_ms is not None:  # the payload's own bounds: no pass over the entries for them
        entries.extend(p.events)
        out.widen(p.times_ms[0] * _MS, p.times_ms[1] * _MS)


def _cloudwatch(doc: dict[str, Any], ctx: _Ctx, out: _Out) -> None:
    data = _str(_obj(doc["awslogs"], "awslogs").get("data"), "awslogs.data")
    try:
        raw = _b64(data)
    except binascii.Error as e:
        raise EventError(f"awslogs.data is not base64: {e}") from None
    try:
        payload = parse_cloudwatch(raw, ctx.budget)
    except PayloadError as e:
        raise EventError(f"awslogs.data: {e}") from None
    except OverflowError as e:
        raise EventTooLarge(f"awslogs.data: {e}", total=False) from None
    except BudgetExceeded as e:
        raise EventTooLarge(f"awslogs.data: {e}", total=True) from None
    _add_cloudwatch(payload, {"__aws_log_type": CLOUDWATCH}, ctx, out)


def _kinesis(records: list[dict[str, Any]], ctx: _Ctx, out: _Out) -> None:
    for i, rec in enumerate(records):
        kin = _obj(rec.get("kinesis"), f"Records[{i}].kinesis")
        data = _str(kin.get("data"), f"Records[{i}].kinesis.data")
        arn = rec.get("eventSourceARN")
        labels = {"__aws_log_type": KINESIS, "__aws_kinesis_event_source_arn": arn if isinstance(arn, str) else ""}
        try:
            raw = _b64(data)
        except binascii.Error:
            ctx.skip(SKIP_BASE64)
            continue
        if raw[:2] == GZIP_MAGIC:
            try:
                raw = gunzip(raw, ctx.budget)
            except PayloadError:
                ctx.skip(SKIP_GZIP)
                continue
            except OverflowError:  # this record alone: skipped, as a retry cannot help
                ctx.skip(SKIP_TOO_LARGE)
                continue
            except BudgetExceeded as e:
                raise EventTooLarge(f"Records[{i}].kinesis.data: {e}", total=True) from None
        if raw[:1] == b"{":
            try:
                payload = parse_cloudwatch(raw, ctx.budget)
            except PayloadError:
                pass
            except OverflowError:  # gzip within the gzip
                ctx.skip(SKIP_TOO_LARGE)
                continue
            except BudgetExceeded as e:
                raise EventTooLarge(f"Records[{i}].kinesis.data: {e}", total=True) from None
            else:
                _add_cloudwatch(payload, labels, ctx, out)
                continue
        line = _text(raw)
        if not line:
            ctx.skip(SKIP_EMPTY)
            continue
        out.add(labels, ctx.time(_seconds_ns(kin.get("approximateArrivalTimestamp"))), line)


def _s3(records: list[dict[str, Any]], ctx: _Ctx, out: _Out) -> None:
    for i, rec in enumerate(records):
        name = rec.get("eventName")
        if not isinstance(name, str) or not name.removeprefix("s3:").startswith("ObjectCreated:"):
            ctx.ignored += 1
            continue
        s3 = _obj(rec.get("s3"), f"Records[{i}].s3")
        bucket = _str(_obj(s3.get("bucket"), f"Records[{i}].s3.bucket").get("name"), f"Records[{i}].s3.bucket.name")
        key = _str(_obj(s3.get("object"), f"Records[{i}].s3.object").get("key"), f"Records[{i}].s3.object.key")
        region = rec.get("awsRegion")
        out.s3.append(S3Ref(bucket, unquote_plus(key), region if isinstance(region, str) else ""))


def _eventbridge(doc: dict[str, Any], ctx: _Ctx, out: _Out) -> None:
    detail_type = _str(doc["detail-type"], "detail-type")
    source = _str(doc["source"], "source")
    region = doc.get("region")
    if source == "aws.s3" and detail_type == "Object Created":
        detail = _obj(doc.get("detail"), "detail")
        bucket = _str(_obj(detail.get("bucket"), "detail.bucket").get("name"), "detail.bucket.name")
        key = _str(_obj(detail.get("object"), "detail.object").get("key"), "detail.object.key")
        out.s3.append(S3Ref(bucket, unquote_plus(key), region if isinstance(region, str) else ""))
        return
    labels = {
        "__aws_log_type": EVENTBRIDGE,
        "__aws_eventbridge_source": source,
        "__aws_eventbridge_detail_type": detail_type,
    }
    out.add(labels, ctx.time(iso_ns(doc.get("time"))), orjson.dumps(doc).decode())


def _message(text: str, plain: Labels, ts: int | None, ctx: _Ctx, out: _Out, depth: int) -> None:
    """An SQS body or SNS message: an event of its own, else one entry as is."""
    doc: Any = None
    if text[:1] == "{" or text.lstrip()[:1] == "{":
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            doc = None
    kind = _kind(doc)
    if kind is not None:
        _dispatch(doc, kind, ctx, out, depth + 1)
    elif text:
        out.add(plain, ctx.time(ts), text)


def _sns_message(sns: dict[str, Any], what: str, ctx: _Ctx, out: _Out, depth: int) -> None:
    message = _str(sns.get("Message"), f"{what}.Message")
    topic = sns.get("TopicArn")
    labels = {"__aws_log_type": SNS, "__aws_sns_topic_arn": topic if isinstance(topic, str) else ""}
    _message(message, labels, iso_ns(sns.get("Timestamp")), ctx, out, depth)


def _sqs_messages(records: list[dict[str, Any]], ctx: _Ctx, depth: int) -> list[tuple[str, _Out, EventError | None]]:
    """(messageId, what its body produced, error) per SQS record."""
    results: list[tuple[str, _Out, EventError | None]] = []
    for i, rec in enumerate(records):
        message_id = _str(rec.get("messageId"), f"Records[{i}].messageId")
        body = _str(rec.get("body"), f"Records[{i}].body")
        arn = rec.get("eventSourceARN")
        attributes = rec.get("attributes")
        sent = _ms_ns(attributes.get("SentTimestamp")) if isinstance(attributes, dict) else None
        labels = {"__aws_log_type": SQS, "__aws_sqs_queue_arn": arn if isinstance(arn, str) else ""}
        out = _Out()
        try:
            _message(body, labels, sent, ctx, out, depth)
        except EventError as e:
            results.append((message_id, _Out(), e))
        else:
            results.append((message_id, out, None))
    return results


def _dispatch(doc: dict[str, Any], kind: str, ctx: _Ctx, out: _Out, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise EventError(f"events nested more than {MAX_DEPTH} deep")
    if kind == CLOUDWATCH:
        _cloudwatch(doc, ctx, out)
    elif kind == EVENTBRIDGE:
        _eventbridge(doc, ctx, out)
    elif kind == S3_TEST:
        ctx.ignored += 1
    elif kind == _SNS_ENVELOPE:
        _sns_message(doc, "SNS notification", ctx, out, depth)
    else:
        records = _records(doc, kind)
        if kind == S3:
            _s3(records, ctx, out)
        elif kind == KINESIS:
            _kinesis(records, ctx, out)
        elif kind == SNS:
            for i, rec in enumerate(records):
                _sns_message(_obj(rec.get("Sns"), f"Records[{i}].Sns"), f"Records[{i}].Sns", ctx, out, depth)
        else:  # SQS within a message: its messages cannot be reported one by one, so flatten them
            for _, sub, error in _sqs_messages(records, ctx, depth):
                if error is not None:
                    raise error
                out.merge(sub)


def parse_event(doc: Any, *, keep_stream: bool = False, receive_ns: int | ReceiveClock,
                limit: int = DEFAULT_LIMIT) -> ParsedEvent:
    """Decode one Lambda event (already JSON-decoded) into streams, S3 objects to fetch and SQS items.

    `keep_stream` adds __aws_cloudwatch_log_stream (lambda-promtail's KEEP_STREAM);
    `receive_ns` is the time given to entries without a usable one of their own (1 ns apart;
    pass the request's ReceiveClock to share it); `limit` caps what each gzip'd payload, and
    all of them together, may decompress to. Raises EventError (EventTooLarge over the
    limit: for SQS, an SqsItem with `retry` when the total is over and the message alone
    would fit, one with `error` when the message alone is too large).
    """
    kind = _kind(doc)
    if kind is None:
        if not isinstance(doc, dict):
            raise EventError("the event is not a JSON object")
        if "Records" in doc:
            records = _records(doc)
            source = records[0].get("eventSource", records[0].get("EventSource"))
            raise EventError(f"unknown record eventSource {source!r}")
        raise EventError(f"unknown event type (keys: {', '.join(sorted(map(str, doc))[:10])})")
    ctx = _Ctx(keep_stream, receive_clock(receive_ns), limit)
    result = ParsedEvent(SNS if kind == _SNS_ENVELOPE else kind)
    if kind == SQS:
        records = _records(doc, SQS)
        result.items = [
            SqsItem(message_id, out.streams(), out.s3, None if error is None else str(error),
                    isinstance(error, EventTooLarge) and error.total, out.bounds())
            for message_id, out, error in _sqs_messages(records, ctx, 0)
        ]
    else:
        out = _Out()
        _dispatch(doc, kind, ctx, out, 0)
        result.streams = out.streams()
        result.times = out.bounds()
        result.s3_objects = out.s3
    result.ignored = ctx.ignored
    result.ts_fallback = ctx.ts_fallback
    result.skipped = ctx.skipped
    return result


__all__ = [
    "CLOUDWATCH",
    "EVENTBRIDGE",
    "KINESIS",
    "S3",
    "S3_TEST",
    "SNS",
    "SQS",
    "EventError",
    "EventTooLarge",
    "ParsedEvent",
    "S3Ref",
    "SqsItem",
    "parse_event",
]
