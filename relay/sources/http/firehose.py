"""Job kind `aws_firehose`: serves `POST /awsfirehose/api/v1/push`, a thin layer over `relay.aws.firehose`
(the wire format, the settings and the default rules are described there).

Answers (always `Content-Type: application/json`, `{"requestId", "timestamp"[, "errorMessage"]}`):
200 all decodable records accepted (undecodable ones are skipped and counted); 400 malformed
body, invalid tenant, or some streams refused (bad labels; the rest was ingested, and a retry
of that request id gets the same 400 without ingesting again); 401 access key missing or
wrong; 413 over max_send_msg_size; 503 the relay cannot take it now (Firehose retries).

Retries: the ids of the last 10,000 requests answered 200 (or 400 after a partial ingest) are
remembered per job with a digest of their records (and common attributes), and a request with
such an id and the same records gets that answer again without being ingested; the same id with
other records is a new request, and is ingested. A request still in flight makes a concurrent retry of it wait for its outcome.

Metrics: loki_relay_firehose_records_total{job}, ..._records_skipped_total{job,reason},
..._control_messages_total{job}, ..._duplicate_requests_total{job},
..._invalid_common_attributes_total{job}; requests refused with 503 are counted by the relay's
loki_relay_backpressure_requests_total{job,reason} (checked before decoding, so they stay cheap).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ... import relabel
from ...aws.firehose import (
    ACCESS_KEY_HEADER,
    COMMON_ATTRIBUTES_HEADER,
    DEFAULT_RULES,
    REQUEST_ID_HEADER,
    REQUEST_ID_LABEL,
    TENANT_HEADER,
    FirehoseBatch,
    FirehoseError,
    FirehoseSettings,
    FirehoseTooLarge,
    check_access_key,
    common_attributes,
    parse_request,
    response_body,
)
from ...ingest import Backpressure, Ingest
from ...metrics import REGISTRY
from ...sink.fanout import Ticket
from ...tenant import tenant_error
from ..content import BadRequest, BodyTooLarge, first_errors, heavy
from .listener import observe, read_body

log = logging.getLogger("relay.firehose")

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
    settings = job.settings if isinstance(job.settings, FirehoseSettings) else FirehoseSettings()
    access_key, split_lines = settings.access_key, settings.split_lines
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

    async def _room(headers: Mapping[str, str], tenant: str) -> Ticket | Backpressure:
        """Wait briefly for buffer room before the body is read or decoded; else why not.

        Decoding a 500-record delivery costs tens of milliseconds: under backpressure, refuse
        first. Content-Length stands for the request's size (its entries encode to about as
        many bytes).
        """
        length = headers.get("content-length", "")
        try:
            return await ingest.check(tenant, int(length) if length.isdigit() else 0)
        except Backpressure as e:
            return e

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
        if not batch.streams:
            return 200, None, True, None
        if not rid_in_key and rid:
            for stream in batch.streams:
                # Any hashable works as Processor's cache key; these tuples never equal a str key.
                stream.key = tuple(kv for kv in stream.labels.items() if kv[0] != REQUEST_ID_LABEL)  # type: ignore[assignment]
        try:
            outcome = await ingest.push(batch.streams, tenant, receive_ns, ticket, times=batch.times)
        except Backpressure as e:
            return 503, str(e) or "the relay cannot take more now", False, {"Retry-After": e.retry_after_header}
        if outcome.errors:
            # The valid streams were taken: a retry must not take them again, and the sender
            # learns what was refused (Firehose then backs the batch up to S3 if configured).
            return 400, first_errors(outcome.errors, "; "), True, None
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
                # Full buffers first, before the body is even read (Firehose retries; reading and
                # decoding first would only add load).
                # The tenant (common attribute tenant_id, else X-Scope-OrgID) is in the headers:
                # one Loki would refuse is refused before any per-tenant state exists for it.
                _, attr_tenant, _ = common_attributes(headers.get(COMMON_ATTRIBUTES_HEADER, ""))
                tenant = attr_tenant or headers.get(TENANT_HEADER) or ""
                if bad := tenant_error(tenant):
                    return done(answer(400, rid, f"invalid tenant: {bad}"))
                got = await _room(headers, tenant)
                if isinstance(got, Backpressure):
                    return done(answer(503, rid, str(got), {"Retry-After": got.retry_after_header}))
                ticket = got
                try:
                    body = await read_body(request, limit)
                except BodyTooLarge as e:
                    return done(answer(413, rid, str(e)))
                except BadRequest as e:
                    return done(answer(400, rid, str(e)))
                try:
                    if heavy(body, headers.get("content-encoding", "")):  # in a worker thread: the loop serves on
                        batch = await asyncio.to_thread(
                            parse_request, body, headers, receive_ns=receive_ns,
                            use_incoming_timestamp=job.use_incoming_timestamp, split_lines=split_lines, max_size=limit,
                        )
                    else:
                        batch = parse_request(
                            body, headers, receive_ns=receive_ns, use_incoming_timestamp=job.use_incoming_timestamp,
                            split_lines=split_lines, max_size=limit,
                        )
                    del body
                except FirehoseTooLarge as e:
                    return done(answer(413, e.request_id, str(e)))
                except FirehoseError as e:
                    return done(answer(400, e.request_id, str(e)))
                if batch.request_id:
                    # A retry is the same request id with the same records (Firehose keeps the id
                    # across attempts): an id alone is not enough, a sender reusing ids would lose
                    # data. The digest is of the records and attributes, not of the body, whose
                    # `timestamp` may differ between attempts.
                    key = f"{batch.request_id}:{batch.digest}"
                    seen = await recent.claim(key)
                    if seen is not None:
                        m_duplicates.inc()
                        return done(answer(seen[0], batch.request_id, seen[1]))
                    claimed = key
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
