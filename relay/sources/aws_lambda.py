"""Job kind `aws_lambda`: AWS Lambda events over HTTP, the way lambda-promtail receives them.

    scrape_configs:
      - job_name: aws
        aws_lambda:
          server: {http_listen_address: 0.0.0.0, http_listen_port: 3600}
          labels: {job: aws}
          keep_stream: false                 # add __aws_cloudwatch_log_stream
          extra_labels: "env,prod,team,ops"  # lambda-promtail's EXTRA_LABELS form, or a mapping
          omit_extra_labels_prefix: false    # true: `env` instead of `__extra_env`
          drop_labels: [__aws_s3_key]        # a list (or lambda-promtail's comma-separated string)
          use_incoming_timestamp: true       # the events' own times (false: receive time)
          max_send_msg_size: 100MB           # largest request body accepted
          s3:                                # how S3 objects named by notifications are fetched
            region: eu-west-1                # default: the event's awsRegion, else the AWS chain's
            endpoint_url: ""                 # e.g. a MinIO or moto server
            force_path_style: false
            access_key_id: ""                # default: the standard AWS credential chain
            secret_access_key: ""
            session_token: ""
            max_attempts: 3                  # botocore retries per S3 call
        relabel_configs: [...]               # replace the default rules below

`POST /awslambda/api/v1/push` takes the event JSON exactly as AWS hands it to a Lambda
function (optionally Content-Encoding gzip/deflate; `X-Scope-OrgID` picks the tenant).
Event kinds and labels: `relay.sources.lambda_events`; S3 key layouts, timestamps and
labels: `relay.sources.s3logs`.

Label order (as lambda-promtail): the source's labels, then the extra labels (they win
over a source label of the same name), then `drop_labels` are removed; then, as for every
job, the static `labels`, the relabel rules, and removal of every `__*` label.

Default rules (only when the job has no `relabel_configs`; any given rules replace them,
so copy what you need). Each rule copies a label only when its source is non-empty:

    log_type     <- __aws_log_type          cloudwatch, kinesis, sqs, sns, eventbridge, s3_lb, s3_vpc_flow,
                                            s3_cloudtrail, s3_cloudfront, s3_waf, s3_guardduty, s3_msk,
                                            s3_access, s3 (an S3 key of no known layout)
    log_group    <- __aws_cloudwatch_log_group
    log_stream   <- __aws_cloudwatch_log_stream          (only present with keep_stream)
    source       <- __aws_s3_<type> (LB name, flow-log id, trail file id, distribution, web ACL, MSK
                    cluster, source bucket) or __aws_eventbridge_source
    owner        <- __aws_cloudwatch_owner or __aws_s3_<type>_owner (the account)
    bucket       <- __aws_s3_bucket
    source_arn   <- __aws_kinesis_event_source_arn, __aws_sqs_queue_arn or __aws_sns_topic_arn
    detail_type  <- __aws_eventbridge_detail_type
    <name>       <- __extra_<name>          (labelmap: extra labels arrive without their prefix)

`__aws_s3_key` is not copied by default: object keys would make one stream per file.

Answers: 200 `{"kind", "entries", "streams", "s3_objects", "dropped", ...}` once every entry
has been accepted into the relay's buffer; for SQS events also `batchItemFailures` listing
the messageIds whose S3 objects could not be read or that the relay could not accept (so
Lambda retries just those). 400 malformed events; 413 a body over max_send_msg_size;
502 an S3 object that cannot be read (missing, S3 unreachable, corrupt gzip...); 503 with
Retry-After when the relay cannot accept (backpressure). Entries the relay drops by its
own rules (relabel drop, label limits) are not an error: they are counted in
`loki_relay_dropped_entries_total` and reported in the summary's `dropped` / `errors`.

S3 objects are read in a worker thread, chunk by chunk (1000 lines or 4 MiB), while the
event loop pushes the previous chunk: memory stays bounded whatever the object size.
An object that fails half-way has its first chunks accepted already; the retry sends them
again (Loki drops exact duplicates of an entry in a stream).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import relabel
from ..config import ConfigError, JobConfig, Keys, common_job_keys
from ..ingest import Backpressure, Ingest
from ..metrics import REGISTRY
from ..model import LABEL_NAME, Labels, Stream, new_stream
from . import s3logs
from .http import BadRequest, BodyTooLarge, decode_content, read_body
from .lambda_events import SQS, EventError, ParsedEvent, S3Ref, parse_event
from .listener import observe
from .registry import SourceKind, register

log = logging.getLogger("relay.aws_lambda")

KIND = "aws_lambda"
PATH = "/awslambda/api/v1/push"
DEFAULT_LAMBDA_PORT = 3600
EXTRA_PREFIX = "__extra_"
MAX_ERRORS = 10  # error texts kept in an answer

_S3_TYPES = ("s3_lb", "s3_vpc_flow", "s3_cloudtrail", "s3_cloudfront", "s3_waf", "s3_guardduty", "s3_msk", "s3_access")


def _copy(sources: Sequence[str], target: str) -> dict[str, Any]:
    # separator "": only one of the sources is ever set on a stream; (.+) leaves an absent label absent
    return {"source_labels": list(sources), "separator": "", "regex": "(.+)", "target_label": target}


DEFAULT_RULES_CONFIG: list[dict[str, Any]] = [
    _copy(["__aws_log_type"], "log_type"),
    _copy(["__aws_cloudwatch_log_group"], "log_group"),
    _copy(["__aws_cloudwatch_log_stream"], "log_stream"),
    _copy([f"__aws_{t}" for t in _S3_TYPES if t != "s3_guardduty"] + ["__aws_eventbridge_source"], "source"),
    _copy(["__aws_cloudwatch_owner"] + [f"__aws_{t}_owner" for t in _S3_TYPES], "owner"),
    _copy(["__aws_s3_bucket"], "bucket"),
    _copy(["__aws_kinesis_event_source_arn", "__aws_sqs_queue_arn", "__aws_sns_topic_arn"], "source_arn"),
    _copy(["__aws_eventbridge_detail_type"], "detail_type"),
    {"action": "labelmap", "regex": EXTRA_PREFIX + "(.+)", "replacement": "$1"},
]
DEFAULT_RULES: list[relabel.Rule] = relabel.compile_rules(DEFAULT_RULES_CONFIG)

# --- metrics ------------------------------------------------------------------------------

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


# --- settings -----------------------------------------------------------------------------


@dataclass(slots=True)
class S3Settings:
    region: str = ""
    endpoint_url: str = ""
    force_path_style: bool = False
    access_key_id: str = ""
    secret_access_key: str = ""
    session_token: str = ""
    max_attempts: int = 3


@dataclass(slots=True)
class LambdaSettings:
    keep_stream: bool = False
    extra_labels: dict[str, str] = field(default_factory=dict)  # names already prefixed
    drop_labels: tuple[str, ...] = ()
    s3: S3Settings = field(default_factory=S3Settings)

    def apply(self, labels: Labels) -> Labels:
        """Extra labels, then drop_labels, in place (lambda-promtail's applyLabels before relabeling)."""
        if self.extra_labels:
            labels.update(self.extra_labels)
        for name in self.drop_labels:
            labels.pop(name, None)
        return labels


def parse_extra_labels(value: Any, omit_prefix: bool, where: str) -> dict[str, str]:
    """lambda-promtail's "name1,value1,name2,value2" string, or a mapping; names get `__extra_` unless omitted."""
    prefix = "" if omit_prefix else EXTRA_PREFIX
    pairs: list[tuple[str, str]]
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        pairs = [(str(k), "" if v is None else str(v)) for k, v in value.items()]
    elif isinstance(value, str):
        parts = value.split(",")
        if len(parts) % 2:
            raise ConfigError(f"{where}: expected a comma-separated list of name,value pairs (an even number of "
                              f"items), got {len(parts)} items")
        pairs = [(parts[i].strip(), parts[i + 1]) for i in range(0, len(parts), 2)]
    else:
        raise ConfigError(f"{where}: expected \"name1,value1,...\" or a mapping, got {type(value).__name__}")
    out: dict[str, str] = {}
    for name, v in pairs:
        full = prefix + name
        if not LABEL_NAME.fullmatch(full):
            raise ConfigError(f"{where}: invalid label name {name!r}")
        out[full] = v
    return out


def parse_drop_labels(value: Any, where: str) -> tuple[str, ...]:
    """A list of label names, or lambda-promtail's comma-separated string."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        names = value.split(",")
    elif isinstance(value, list):
        names = value
    else:
        raise ConfigError(f"{where}: expected a list of label names, got {type(value).__name__}")
    out = []
    for n in names:
        name = str(n).strip() if isinstance(n, str) else n
        if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
            raise ConfigError(f"{where}: invalid label name {n!r}")
        out.append(name)
    return tuple(out)


def _flag(k: Keys, key: str, default: bool) -> bool:
    v = k.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{k.at(key)}: expected true or false, got {v!r}")
    return v


def _text(k: Keys, key: str) -> str:
    v = k.get(key, "")
    if isinstance(v, (dict, list, bool)):
        raise ConfigError(f"{k.at(key)}: expected a string, got {v!r}")
    return str(v)


def parse_block(k: Keys, job: JobConfig) -> None:
    common_job_keys(k, job, DEFAULT_LAMBDA_PORT, incoming_ts_default=True)
    s = LambdaSettings()
    s.keep_stream = _flag(k, "keep_stream", False)
    omit = _flag(k, "omit_extra_labels_prefix", False)
    s.extra_labels = parse_extra_labels(k.get("extra_labels"), omit, k.at("extra_labels"))
    s.drop_labels = parse_drop_labels(k.get("drop_labels"), k.at("drop_labels"))
    if k.has("s3"):
        b = Keys(k.get("s3"), k.at("s3"))
        s3 = s.s3
        s3.region = _text(b, "region")
        s3.endpoint_url = _text(b, "endpoint_url")
        s3.force_path_style = _flag(b, "force_path_style", False)
        s3.access_key_id = _text(b, "access_key_id")
        s3.secret_access_key = _text(b, "secret_access_key")
        s3.session_token = _text(b, "session_token")
        attempts = b.get("max_attempts", 3)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
            raise ConfigError(f"{b.at('max_attempts')}: expected an integer in [1, 20], got {attempts!r}")
        s3.max_attempts = attempts
        b.done()
        if bool(s3.access_key_id) != bool(s3.secret_access_key):
            raise ConfigError(f"{k.at('s3')}: access_key_id and secret_access_key go together")
        if s3.endpoint_url and not s3.endpoint_url.startswith(("http://", "https://")):
            raise ConfigError(f"{b.at('endpoint_url')}: must be an http:// or https:// URL")
    job.options[KIND] = s


# --- S3 -------------------------------------------------------------------------------------


class S3ReadError(Exception):
    """An S3 object could not be fetched or read (answer 502; the SQS message fails)."""

    def __init__(self, ref: S3Ref, reason: str, detail: str) -> None:
        super().__init__(f"s3://{ref.bucket}/{ref.key}: {detail}")
        self.reason = reason  # s3, corrupt, too_large


class S3Clients:
    """boto3 S3 clients from one `s3` block, created on first use (one per region), thread-safe."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._session: Any = None

    def get(self, region: str = "") -> Any:
        region = self.settings.region or region
        client = self._clients.get(region)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                import boto3
                from botocore.config import Config as BotoConfig

                s = self.settings
                if self._session is None:
                    self._session = boto3.session.Session(
                        aws_access_key_id=s.access_key_id or None,
                        aws_secret_access_key=s.secret_access_key or None,
                        aws_session_token=s.session_token or None,
                    )
                cfg = BotoConfig(
                    s3={"addressing_style": "path" if s.force_path_style else "auto"},
                    retries={"max_attempts": s.max_attempts, "mode": "standard"},
                    max_pool_connections=32,
                    connect_timeout=10,
                    read_timeout=60,
                )
                client = self._session.client("s3", region_name=region or None, endpoint_url=s.endpoint_url or None,
                                              config=cfg)
                self._clients[region] = client
        return client


class ObjectReader:
    """One S3 object, fetched and parsed chunk by chunk. Every method blocks: call it from a thread."""

    def __init__(self, clients: S3Clients, ref: S3Ref, receive_ns: int) -> None:
        self.clients = clients
        self.ref = ref
        self.receive_ns = receive_ns
        self.obj = s3logs.classify(ref.bucket, ref.key)
        self.stats = s3logs.S3Stats()
        self._body: Any = None
        self._chunks: Any = None

    def next_chunk(self) -> list[tuple[int, str]] | None:
        """The next entries (unix ns, line), or None at the end. Raises S3ReadError."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self.obj.skip:
            return None
        try:
            if self._chunks is None:
                self._body = self.clients.get(self.ref.region).get_object(Bucket=self.ref.bucket, Key=self.ref.key)["Body"]
                self._chunks = s3logs.read_entries(self.obj, self._body, self.receive_ns, stats=self.stats)
            return next(self._chunks, None)
        except s3logs.ObjectTooLarge as e:
            raise S3ReadError(self.ref, "too_large", str(e)) from None
        except s3logs.S3LogError as e:
            raise S3ReadError(self.ref, "corrupt", str(e)) from None
        except ClientError as e:
            err = e.response.get("Error", {})
            raise S3ReadError(self.ref, "s3", f"{err.get('Code', '?')}: {err.get('Message', e)}") from None
        except (BotoCoreError, OSError) as e:
            raise S3ReadError(self.ref, "s3", f"{type(e).__name__}: {e}") from None

    def close(self) -> None:
        if self._chunks is not None:
            self._chunks.close()
        if self._body is not None:
            try:
                self._body.close()
            except Exception:  # noqa: BLE001 - closing a half-read HTTP body must not mask the real outcome
                pass


# --- handling one event ---------------------------------------------------------------------


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


class EventHandler:
    """Parsed Lambda events -> ingest, S3 objects streamed from a worker thread."""

    def __init__(self, ingest: Ingest, settings: LambdaSettings, clients: S3Clients | None = None) -> None:
        self.ingest = ingest
        self.settings = settings
        self.clients = clients or S3Clients(settings.s3)
        self.job = ingest.job.name

    def parse(self, doc: Any, receive_ns: int) -> ParsedEvent:
        parsed = parse_event(doc, keep_stream=self.settings.keep_stream, receive_ns=receive_ns,
                             limit=self.ingest.job.max_message_size)
        lambda_events.labels(self.job, parsed.kind).inc()
        if parsed.ignored:
            lambda_skipped.labels(self.job, "ignored").inc(parsed.ignored)
        for reason, n in parsed.skipped.items():
            lambda_skipped.labels(self.job, reason).inc(n)
        if parsed.ts_fallback:
            timestamp_fallbacks.labels(self.job).inc(parsed.ts_fallback)
        return parsed

    async def push(self, streams: Iterable[Stream], tenant: str, receive_ns: int, summary: Summary) -> None:
        batch = [s for s in streams if s.entries.entries]
        if not batch:
            return
        for s in batch:
            self.settings.apply(s.labels)
        out = await self.ingest.push(batch, tenant, receive_ns)
        summary.entries += out.entries
        summary.streams += sum(len(c) for c in out.chunks.values())
        summary.dropped += sum(out.dropped.values())
        if out.errors and len(summary.errors) < MAX_ERRORS:
            summary.errors.extend(out.errors[: MAX_ERRORS - len(summary.errors)])

    async def push_object(self, ref: S3Ref, tenant: str, receive_ns: int, summary: Summary) -> None:
        reader = ObjectReader(self.clients, ref, receive_ns)
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
                out = await self.ingest.push([stream], tenant, receive_ns)
                summary.entries += out.entries
                summary.dropped += sum(out.dropped.values())
                if out.errors and len(summary.errors) < MAX_ERRORS:
                    summary.errors.extend(out.errors[: MAX_ERRORS - len(summary.errors)])
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

    async def deliver(self, streams: list[Stream], objects: list[S3Ref], tenant: str, receive_ns: int,
                      summary: Summary) -> None:
        await self.push(streams, tenant, receive_ns, summary)
        for ref in objects:
            await self.push_object(ref, tenant, receive_ns, summary)

    async def sqs(self, parsed: ParsedEvent, tenant: str, receive_ns: int, summary: Summary) -> list[str]:
        """Deliver each message; the messageIds that failed (to be retried by Lambda)."""
        failed: list[str] = []
        busy: Backpressure | None = None
        for item in parsed.items:
            if item.error is not None:
                # Retrying cannot fix a malformed body: count it and let the batch succeed.
                lambda_skipped.labels(self.job, "invalid_sqs_message").inc()
                log.warning("invalid event in SQS message %s (dropped): %s", item.message_id, item.error)
                if len(summary.errors) < MAX_ERRORS:
                    summary.errors.append(f"message {item.message_id}: {item.error}")
                continue
            if busy is not None:  # the relay is full: do not even try the rest
                failed.append(item.message_id)
                continue
            try:
                await self.deliver(item.streams, item.s3_objects, tenant, receive_ns, summary)
            except S3ReadError as e:
                log.warning("SQS message %s failed: %s", item.message_id, e)
                failed.append(item.message_id)
                if len(summary.errors) < MAX_ERRORS:
                    summary.errors.append(f"message {item.message_id}: {e}")
            except Backpressure as e:
                busy = e
                failed.append(item.message_id)
        return failed


def _unavailable(e: Backpressure) -> Response:
    return PlainTextResponse(f"{e}\n", 503, headers={"Retry-After": e.retry_after_header})


def routes(ingest: Ingest) -> list[Route]:
    job = ingest.job
    limit = job.max_message_size
    settings = job.options.get(KIND) or LambdaSettings()
    handler = EventHandler(ingest, settings)

    async def push(request: Request) -> Response:
        with observe(job.name, "awslambda") as done:
            receive_ns = time.time_ns()
            tenant = request.headers.get("x-scope-orgid", "")
            try:
                (await ingest.check(tenant)).release()  # full buffers: refuse before reading S3 or decoding
            except Backpressure as e:
                return done(_unavailable(e))
            try:
                body = decode_content(await read_body(request, limit), request.headers.get("content-encoding", ""), limit)
                try:
                    doc = orjson.loads(body)
                except orjson.JSONDecodeError as e:
                    raise BadRequest(f"invalid JSON: {e}") from None
                parsed = handler.parse(doc, receive_ns)
            except BodyTooLarge as e:
                return done(PlainTextResponse(f"{e}\n", 413))
            except (BadRequest, EventError) as e:
                return done(PlainTextResponse(f"{e}\n", 400))
            summary = Summary(kind=parsed.kind, ignored=parsed.ignored)
            try:
                if parsed.kind == SQS:
                    failed = await handler.sqs(parsed, tenant, receive_ns, summary)
                    answer = summary.json()
                    answer["batchItemFailures"] = [{"itemIdentifier": m} for m in failed]
                    return done(JSONResponse(answer))
                await handler.deliver(parsed.streams, parsed.s3_objects, tenant, receive_ns, summary)
            except S3ReadError as e:
                log.warning("cannot read S3 object: job=%s %s", job.name, e)
                return done(PlainTextResponse(f"cannot read S3 object {e}\n", 502))
            except Backpressure as e:
                return done(_unavailable(e))
            return done(JSONResponse(summary.json()))

    return [Route(PATH, push, methods=["POST"])]


register(SourceKind(KIND, parse_block, routes, DEFAULT_RULES))

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_RULES_CONFIG",
    "EventHandler",
    "LambdaSettings",
    "ObjectReader",
    "PATH",
    "S3Clients",
    "S3ReadError",
    "S3Settings",
    "parse_drop_labels",
    "parse_extra_labels",
]
