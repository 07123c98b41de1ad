"""Job kind `aws_lambda`: AWS Lambda events over HTTP, the way lambda-promtail receives them.
A thin layer over `relay.aws` (settings, labels and default rules: `relay.aws.settings`).

`POST /awslambda/api/v1/push` takes the event JSON exactly as AWS hands it to a Lambda
function (optionally Content-Encoding gzip/deflate; `X-Scope-OrgID` picks the tenant).
Event kinds and labels: `relay.aws.events`; S3 key layouts, timestamps and
labels: `relay.aws.s3logs`.

Answers: 200 `{"kind", "entries", "streams", "s3_objects", "dropped", ...}` once every entry
has been accepted into the relay's buffer; for SQS events also `batchItemFailures` listing
the messageIds whose S3 objects could not be read or that the relay could not accept (so
Lambda retries just those). 400 malformed events, or an X-Scope-OrgID Loki would refuse
(`relay.tenant`); 413 a body over max_send_msg_size, or
payloads inside the event (CloudWatch data, Kinesis records, SQS/SNS-embedded events) that
decompress to more than max_send_msg_size in total (one Kinesis record over it alone is
skipped and counted as `too-large`; an SQS message that does not fit beside the others is
listed in `batchItemFailures`, one too large alone is dropped as invalid);
502 an S3 object that cannot be read (missing, S3 unreachable, corrupt gzip...); 503 with
Retry-After when the relay cannot accept (backpressure). Entries the relay drops by its
own rules (relabel drop, label limits) are not an error: they are counted in
`loki_relay_dropped_entries_total` and reported in the summary's `dropped` / `errors`.

Bodies of 1 MiB or more (16 KiB compressed) are decoded in a worker thread, so one huge
event does not hold the listeners. S3 objects are read in a worker thread, chunk by chunk (1000 lines or 4 MiB), while the
event loop pushes the previous chunk: memory stays bounded whatever the object size.
An object that fails half-way has its first chunks accepted already; the retry sends them
again (Loki drops exact duplicates of an entry in a stream).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ...aws import s3logs
from ...aws.events import SQS, EventError, EventTooLarge, ParsedEvent, S3Ref, parse_event
from ...aws.s3 import ObjectReader, S3Clients, S3ReadError
from ...aws.settings import LambdaSettings
from ...aws.sqs import SqsBatch
from ...ingest import Backpressure, Ingest
from ...metrics import REGISTRY
from ...model import Stream, new_stream
from ...pipeline import Outcome
from ...tenant import tenant_error
from ...times import ReceiveClock
from ..content import BadRequest, BodyTooLarge, decode_content, heavy
from .listener import observe, read_body

log = logging.getLogger("relay.aws_lambda")

PATH = "/awslambda/api/v1/push"
MAX_ERRORS = 10  # error texts kept in an answer

lambda_events = Counter(
    "loki_relay_lambda_events_total", "Lambda events received by aws_lambda jobs, by outermost kind.",
    ["job", "kind"], registry=REGISTRY,
)
lambda_skipped = Counter(
    "loki_relay_lambda_skipped_total",
    "Parts of Lambda events that produced no entries: ignored (CONTROL_MESSAGE, s3:TestEvent, S3 records other "
    "than ObjectCreated), invalid_sqs_message, or a Kinesis record's decode failure.",
    ["job", "reason"], registry=REGISTRY,
)
timestamp_fallbacks = Counter(
    "loki_relay_aws_timestamp_fallbacks_total",
    "Entries of AWS events and S3 logs given the receive time because their own was missing or did not parse.",
    ["job"], registry=REGISTRY,
)
s3_objects = Counter(
    "loki_relay_s3_objects_total", "S3 objects read, by log type (s3: a key of no known layout).",
    ["job", "log_type"], registry=REGISTRY,
)
s3_unknown_keys = Counter(
    "loki_relay_s3_unknown_keys_total", "S3 objects whose key matched no known layout (ingested as log_type s3).",
    ["job"], registry=REGISTRY,
)
s3_errors = Counter(
    "loki_relay_s3_object_errors_total",
    "S3 objects that could not be read: s3 (GetObject or the transfer failed), corrupt (bad gzip, CloudTrail not "
    "JSON), too_large (a line or CloudTrail document over the limit).",
    ["job", "reason"], registry=REGISTRY,
)
s3_bytes = Counter(
    "loki_relay_s3_read_bytes_total", "Bytes read from S3 objects, after decompression.", ["job"], registry=REGISTRY
)


@dataclass(slots=True)
class Summary:
    kind: str = ""
    entries: int = 0  # accepted into the relay's buffer
    streams: int = 0  # streams accepted
    s3_objects: int = 0
    dropped: int = 0  # dropped by the relay's own rules (relabel drop, label limits ...)
    ignored: int = 0
    errors: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "entries": self.entries, "streams": self.streams,
                               "s3_objects": self.s3_objects, "dropped": self.dropped, "ignored": self.ignored}
        if self.errors:
            out["errors"] = self.errors[:MAX_ERRORS]
        return out

    def add(self, out: Outcome) -> None:
        """Count what the relay accepted and dropped of one push; keep its first error texts."""
        self.entries += out.entries
        self.dropped += sum(out.dropped.values())
        self.error(*out.errors)

    def error(self, *texts: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.extend(texts[: MAX_ERRORS - len(self.errors)])


class EventHandler:
    """Parsed Lambda events -> ingest, S3 objects streamed from a worker thread."""

    def __init__(self, ingest: Ingest, settings: LambdaSettings, clients: S3Clients | None = None) -> None:
        self.ingest = ingest
        self.settings = settings
        self.clients = clients or S3Clients(settings.s3)
        self.job = ingest.job.name

    def parse(self, body: bytes, encoding: str, clock: ReceiveClock) -> ParsedEvent:
        """The event in a request body. Raises BadRequest, BodyTooLarge, EventError."""
        limit = self.ingest.job.max_message_size
        body = decode_content(body, encoding, limit)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise BadRequest(f"invalid JSON: {e}") from None
        del body
        parsed = parse_event(doc, keep_stream=self.settings.keep_stream, receive_ns=clock, limit=limit)
        lambda_events.labels(self.job, parsed.kind).inc()
        if parsed.ignored:
            lambda_skipped.labels(self.job, "ignored").inc(parsed.ignored)
        for reason, n in parsed.skipped.items():
            lambda_skipped.labels(self.job, reason).inc(n)
        if parsed.ts_fallback:
            timestamp_fallbacks.labels(self.job).inc(parsed.ts_fallback)
        return parsed

    async def push(self, streams: Iterable[Stream], tenant: str, clock: ReceiveClock, summary: Summary,
                   times: tuple[int, int] | None = None) -> None:
        """`times`: the earliest and latest entry time of `streams`, when the decoder knows them."""
        batch = [s for s in streams if s.entries.entries]
        if not batch:
            return
        for s in batch:
            self.settings.apply(s.labels)
        out = await self.ingest.push(batch, tenant, clock.take(sum(len(s.entries.entries) for s in batch)),
                                     times=times)
        summary.add(out)
        summary.streams += sum(len(c) for c in out.chunks.values())

    async def push_object(self, ref: S3Ref, tenant: str, clock: ReceiveClock, summary: Summary) -> None:
        reader = ObjectReader(self.clients, ref, clock)
        obj = reader.obj
        labels = self.settings.apply(dict(obj.labels))
        pending = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))
        try:
            while True:
                try:
                    chunk = await pending
                except S3ReadError as e:
                    s3_errors.labels(self.job, e.reason).inc()
                    raise
                if chunk is None:
                    break
                pending = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))  # read ahead while pushing
                stream = new_stream(labels, chunk)
                summary.add(await self.ingest.push([stream], tenant, clock.take(len(chunk))))
        finally:
            if not pending.done():
                await asyncio.wait([pending])
            if pending.done() and not pending.cancelled():
                pending.exception()  # retrieved: never "exception was never retrieved"
            await asyncio.to_thread(reader.close)
            s3_bytes.labels(self.job).inc(reader.stats.bytes)
            if reader.stats.ts_fallback:
                timestamp_fallbacks.labels(self.job).inc(reader.stats.ts_fallback)
        summary.s3_objects += 1
        summary.streams += 1
        s3_objects.labels(self.job, obj.log_type).inc()
        if obj.log_type == s3logs.UNKNOWN:
            s3_unknown_keys.labels(self.job).inc()
            log.info("S3 key of no known layout ingested as log_type s3: job=%s bucket=%s key=%s",
                     self.job, ref.bucket, ref.key)

    async def deliver(self, streams: list[Stream], objects: list[S3Ref], tenant: str, clock: ReceiveClock,
                      summary: Summary, times: tuple[int, int] | None = None) -> None:
        await self.push(streams, tenant, clock, summary, times)
        for ref in objects:
            await self.push_object(ref, tenant, clock, summary)

    async def sqs(self, parsed: ParsedEvent, tenant: str, clock: ReceiveClock, summary: Summary) -> SqsBatch:
        """Deliver each message; the batch knows which failed (to be retried by Lambda)."""
        batch = SqsBatch(parsed.items)
        for item in batch.pending():
            try:
                await self.deliver(item.streams, item.s3_objects, tenant, clock, summary, item.times)
            except S3ReadError as e:
                log.warning("SQS message %s failed: %s", item.message_id, e)
                batch.fail(item.message_id)
                summary.error(f"message {item.message_id}: {e}")
            except Backpressure:
                batch.fail(item.message_id, stop=True)  # the relay is full: do not even try the rest
        for item in parsed.items:
            if item.retry:
                log.warning("SQS message %s left for a retry: %s", item.message_id, item.error)
                summary.error(f"message {item.message_id}: {item.error}")
        for item in batch.invalid:
            # Retrying cannot fix a malformed body: count it and let the batch succeed.
            lambda_skipped.labels(self.job, "invalid_sqs_message").inc()
            log.warning("invalid event in SQS message %s (dropped): %s", item.message_id, item.error)
            summary.error(f"message {item.message_id}: {item.error}")
        return batch


def _unavailable(e: Backpressure) -> Response:
    return PlainTextResponse(f"{e}\n", 503, headers={"Retry-After": e.retry_after_header})


def routes(ingest: Ingest) -> list[Route]:
    job = ingest.job
    limit = job.max_message_size
    settings = job.settings if isinstance(job.settings, LambdaSettings) else LambdaSettings()
    handler = EventHandler(ingest, settings)

    async def push(request: Request) -> Response:
        with observe(job.name, "awslambda") as done:
            clock = ReceiveClock(time.time_ns())
            tenant = request.headers.get("x-scope-orgid", "")
            if bad := tenant_error(tenant):  # before any per-tenant state exists for it
                return done(PlainTextResponse(f"{bad}\n", 400))
            try:
                (await ingest.check(tenant)).release()  # full buffers: refuse before reading S3 or decoding
            except Backpressure as e:
                return done(_unavailable(e))
            try:
                body = await read_body(request, limit)
                encoding = request.headers.get("content-encoding", "")
                if heavy(body, encoding):  # decoded in a worker thread: the event loop serves on
                    parsed = await asyncio.to_thread(handler.parse, body, encoding, clock)
                else:
                    parsed = handler.parse(body, encoding, clock)
                del body
            except (BodyTooLarge, EventTooLarge) as e:
                return done(PlainTextResponse(f"{e}\n", 413))
            except (BadRequest, EventError) as e:
                return done(PlainTextResponse(f"{e}\n", 400))
            summary = Summary(kind=parsed.kind, ignored=parsed.ignored)
            try:
                if parsed.kind == SQS:
                    batch = await handler.sqs(parsed, tenant, clock, summary)
                    answer = summary.json()
                    answer["batchItemFailures"] = batch.failures()
                    return done(JSONResponse(answer))
                await handler.deliver(parsed.streams, parsed.s3_objects, tenant, clock, summary, parsed.times)
            except S3ReadError as e:
                log.warning("cannot read S3 object: job=%s %s", job.name, e)
                return done(PlainTextResponse(f"cannot read S3 object {e}\n", 502))
            except Backpressure as e:
                return done(_unavailable(e))
            return done(JSONResponse(summary.json()))

    return [Route(PATH, push, methods=["POST"])]
