"""A drop-in replacement for the lambda-promtail function: parse in-process, push straight to Loki.

Handler: `relay.aws.lambda_handler.handler`. Package it with `python deploy/aws/lambda/build.py`
(zips for x86_64 and arm64 in dist/, runtime python3.12; or the image of
deploy/aws/lambda/Dockerfile), then swap the function's code and handler; the environment
variables stay as they are. Event kinds, S3 layouts and labels are the
relay's (`relay.aws.events`, `relay.aws.s3logs`); the label pipeline is the
`aws_lambda` job's: source labels, EXTRA_LABELS, DROP_LABELS, then RELABEL_CONFIGS, then every
`__*` label removed. Without RELABEL_CONFIGS the `aws_lambda` default rules apply
(`relay.aws.settings`), so streams arrive as log_type/log_group/source/owner/... where
lambda-promtail sent the raw `__aws_*` names.

Environment (lambda-promtail's names and meanings):

    WRITE_ADDRESS             required, http(s)://<loki>/loki/api/v1/push
    USERNAME, PASSWORD        basic auth; both or neither
    BEARER_TOKEN              bearer auth; not together with USERNAME
    TENANT_ID                 X-Scope-OrgID
    KEEP_STREAM               true/false (default false): keep __aws_cloudwatch_log_stream
    BATCH_SIZE                bytes of encoded entries per push (default 131072)
    EXTRA_LABELS              "name1,value1,name2,value2": labels __extra_<name> on every stream
    OMIT_EXTRA_LABELS_PREFIX  true/false (default false): name them <name> instead
    DROP_LABELS               "name1,name2": labels removed before relabeling
    RELABEL_CONFIGS           a JSON (or YAML) list of Prometheus relabel rules
    LOKI_STAGE_CONFIGS        a JSON array of Promtail pipeline stages ([{"json": {...}}, {"labels": {...}}]),
                              run after RELABEL_CONFIGS and the removal of `__*` labels
    PIPELINE_TIMEOUT          Go duration (default 1s): the longest a stage may hold an entry (a
                              limit stage without drop); an entry that would wait longer is dropped
    SKIP_TLS_VERIFY           true/false (default false)
    PRINT_LOG_LINE            true/false (default true): print each line to the function's log

USERNAME, PASSWORD and BEARER_TOKEN may be a Secrets Manager secret ARN
(`arn:aws:secretsmanager:...`, its SecretString) or an SSM parameter ARN
(`arn:aws:ssm:...:parameter/...`, decrypted); they are resolved once at cold start with the
function's role. S3 objects are fetched with the function's role too (AWS_ENDPOINT_URL_S3
points boto3 elsewhere, e.g. for tests).

Stricter than lambda-promtail, on purpose: a boolean that is not true/false, a BATCH_SIZE
that is not a positive integer, or an invalid RELABEL_CONFIGS raises `SettingsError` at cold
start (when the function is loaded in Lambda; on the first call elsewhere), where
lambda-promtail silently used a default.

Pushing: batches of BATCH_SIZE are sent as they fill and at the end of the invocation,
synchronously, retried on 429, 5xx and connection errors (100 ms doubling to 30 s, 10
retries, Retry-After honoured, bounded by the invocation's remaining time; the relay's own
policy, `relay.sink.retry`). A batch Loki does not take fails the
invocation (`LokiError`), so AWS retries the event; for SQS only the messages whose entries
were in a failed batch, or whose S3 object could not be read, are returned in
`batchItemFailures`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from .. import __version__, relabel
from ..config import Backoff, JobConfig, LimitsConfig, ServerConfig
from ..keys import ConfigError
from ..model import Chunk, Stream, new_stream
from ..pipeline import Processor
from ..pipeline.gotime import parse_duration
from ..pipeline.pipeline import Pipeline
from ..pipeline.pipeline import build as build_pipeline
from ..sink import retry
from ..sink.batch import LabelEncoder, compress, encode_push
from ..tenant import tenant_error
from ..times import ReceiveClock
from . import settings as aws_lambda
from .events import SQS, S3Ref, parse_event
from .s3 import ObjectReader, S3Clients, S3ReadError, S3Settings
from .settings import LambdaSettings
from .sqs import SqsBatch

DEFAULT_BATCH_SIZE = 131072
DEFAULT_PIPELINE_TIMEOUT = 1.0
TIMEOUT = 5.0
BACKOFF = Backoff(min_period=0.1, max_period=30.0, max_retries=10)
USER_AGENT = f"loki-relay-lambda/{__version__}"


class SettingsError(ValueError):
    """An environment variable is missing or invalid (raised at cold start)."""


class LokiError(RuntimeError):
    """Loki did not take a batch; `message_ids` are the SQS messages whose entries were in it."""

    def __init__(self, message: str, message_ids: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message_ids = set(message_ids)


@dataclass(slots=True)
class Settings:
    write_address: str
    username: str = ""
    password: str = ""
    bearer_token: str = ""
    tenant_id: str = ""
    batch_size: int = DEFAULT_BATCH_SIZE
    skip_tls_verify: bool = False
    print_log_line: bool = True
    lambda_settings: LambdaSettings = field(default_factory=LambdaSettings)
    relabel: list[relabel.Rule] = field(default_factory=list)
    has_relabel: bool = False
    pipeline: Pipeline | None = None  # LOKI_STAGE_CONFIGS, compiled once per cold start
    pipeline_timeout: float = DEFAULT_PIPELINE_TIMEOUT


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() == "true":
        return True
    if raw.lower() == "false":
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _resolve_secret(name: str, value: str) -> str:
    """A Secrets Manager or SSM parameter ARN -> its value (with the function's role); else the value."""
    if not value.startswith("arn:"):
        return value
    parts = value.split(":", 6)
    if len(parts) < 6:
        raise SettingsError(f"{name}: {value!r} is not a valid ARN")
    service, region = parts[2], parts[3] or None
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if service == "secretsmanager":
            secret = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=value)
            if "SecretString" not in secret:
                raise SettingsError(f"{name}: secret {value} has no SecretString")
            return str(secret["SecretString"])
        if service == "ssm" and parts[5].startswith("parameter/"):
            param = boto3.client("ssm", region_name=region).get_parameter(Name=value, WithDecryption=True)
            return str(param["Parameter"]["Value"])
    except (BotoCoreError, ClientError) as e:
        raise SettingsError(f"{name}: cannot read {value}: {e}") from None
    raise SettingsError(f"{name}: only Secrets Manager secret and SSM parameter ARNs are supported, got {value!r}")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate lambda-promtail's environment variables. Raises SettingsError."""
    env = os.environ if env is None else env
    addr = env.get("WRITE_ADDRESS", "").strip()
    if not addr:
        raise SettingsError("required environment variable WRITE_ADDRESS not set, "
                            "format: https://<hostname>/loki/api/v1/push")
    try:
        url = httpx.URL(addr)
    except httpx.InvalidURL as e:
        raise SettingsError(f"WRITE_ADDRESS {addr!r} is not a URL: {e}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise SettingsError(f"WRITE_ADDRESS must be an http:// or https:// URL, got {addr!r}")
    s = Settings(write_address=addr)
    s.username = _resolve_secret("USERNAME", env.get("USERNAME", ""))
    s.password = _resolve_secret("PASSWORD", env.get("PASSWORD", ""))
    if bool(s.username) != bool(s.password):
        raise SettingsError("both USERNAME and PASSWORD must be set if either one is set")
    s.bearer_token = _resolve_secret("BEARER_TOKEN", env.get("BEARER_TOKEN", ""))
    if s.username and s.bearer_token:
        raise SettingsError("USERNAME/PASSWORD and BEARER_TOKEN are mutually exclusive")
    s.tenant_id = env.get("TENANT_ID", "")
    if bad := tenant_error(s.tenant_id):  # Loki would refuse every push
        raise SettingsError(f"TENANT_ID: {bad}")
    raw = env.get("BATCH_SIZE", "").strip()
    if raw:
        try:
            s.batch_size = int(raw)
        except ValueError:
            raise SettingsError(f"BATCH_SIZE must be a positive integer (bytes), got {raw!r}") from None
        if s.batch_size <= 0:
            raise SettingsError(f"BATCH_SIZE must be a positive integer (bytes), got {raw!r}")
    s.skip_tls_verify = _bool(env, "SKIP_TLS_VERIFY", False)
    s.print_log_line = _bool(env, "PRINT_LOG_LINE", True)
    ls = s.lambda_settings
    ls.keep_stream = _bool(env, "KEEP_STREAM", False)
    omit = _bool(env, "OMIT_EXTRA_LABELS_PREFIX", False)
    try:
        ls.extra_labels = aws_lambda.parse_extra_labels(env.get("EXTRA_LABELS", ""), omit, "EXTRA_LABELS")
        ls.drop_labels = aws_lambda.parse_drop_labels(env.get("DROP_LABELS", ""), "DROP_LABELS")
    except ConfigError as e:
        raise SettingsError(str(e)) from None
    ls.s3 = S3Settings()
    raw = env.get("RELABEL_CONFIGS", "").strip()
    if raw:
        import yaml  # only when there are rules: yaml costs cold-start time

        try:
            rules = yaml.safe_load(raw)  # JSON is YAML
        except yaml.YAMLError as e:
            raise SettingsError(f"failed to parse RELABEL_CONFIGS: {e}") from None
        try:
            s.relabel = relabel.compile_rules(rules)
        except relabel.RelabelError as e:
            raise SettingsError(f"RELABEL_CONFIGS: {e}") from None
        s.has_relabel = True
    raw = env.get("PIPELINE_TIMEOUT", "").strip()
    if raw:
        try:
            s.pipeline_timeout = parse_duration(raw)
        except ValueError as e:
            raise SettingsError(f"PIPELINE_TIMEOUT must be a Go duration such as 1s or 500ms, got {raw!r}: {e}") from None
        if s.pipeline_timeout <= 0:
            raise SettingsError(f"PIPELINE_TIMEOUT must be positive, got {raw!r}")
    raw = env.get("LOKI_STAGE_CONFIGS", "").strip()
    if raw:
        try:
            stages = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise SettingsError(f"failed to parse LOKI_STAGE_CONFIGS: {e}") from None
        if not isinstance(stages, list):
            raise SettingsError("failed to parse LOKI_STAGE_CONFIGS: expected a JSON array of stages")
        try:
            s.pipeline = build_pipeline(stages, "lambda-promtail", "LOKI_STAGE_CONFIGS", max_hold=s.pipeline_timeout)
        except ConfigError as e:
            raise SettingsError(str(e)) from None
    return s


class Shipper:
    """Processes streams with the job's rules and pushes them to Loki in BATCH_SIZE batches."""

    def __init__(self, s: Settings, http: httpx.Client, context: Any = None) -> None:
        self.s = s
        self.http = http
        self.context = context
        job = JobConfig(name="lambda-promtail", kind=aws_lambda.KIND, listen=ServerConfig(), relabel=s.relabel,
                        has_relabel=s.has_relabel, use_incoming_timestamp=True)
        # No time window: each push waits for Loki's own answer, which judges times by its real limits.
        limits = LimitsConfig(reject_old_samples=False, creation_grace_period=0.0)
        self.processor = Processor(job, limits, aws_lambda.DEFAULT_RULES, pipeline=s.pipeline)
        self.labels = LabelEncoder({})
        self.pending: dict[str, list[Chunk]] = {}
        self.pending_bytes = 0
        self.pending_ids: set[str] = set()
        self.entries = 0  # sent
        self.dropped = 0

    # -- adding ---------------------------------------------------------------------------

    def add(self, streams: list[Stream], receive_ns: int, owner: str | None) -> None:
        if self.s.print_log_line:
            sys.stdout.write("".join(f"{e.line}\n" for st in streams for e in st.entries.entries))
        out = self.processor.process(streams, self.s.tenant_id, receive_ns)
        if out.hold > 0:  # a limit stage without drop: wait for its tokens (at most PIPELINE_TIMEOUT)
            time.sleep(out.hold)
        self._take(out, owner)

    def close(self) -> None:
        """The end of an invocation: whatever stages held back (multiline) is sent with the rest."""
        if self.processor.pipeline is not None:
            self._take(self.processor.flush(final=True), None)
        self.flush()

    def _take(self, out: Any, owner: str | None) -> None:
        self.dropped += sum(out.dropped.values())
        for tenant, chunks in out.chunks.items():
            self.pending.setdefault(tenant, []).extend(chunks)
        self.pending_bytes += out.size
        if owner is not None and out.chunks:
            self.pending_ids.add(owner)
        if self.pending_bytes >= self.s.batch_size:
            self.flush()

    def deliver(self, clients: S3Clients, streams: list[Stream], objects: list[S3Ref], clock: ReceiveClock,
                owner: str | None = None) -> None:
        ls = self.s.lambda_settings
        batch = [st for st in streams if st.entries.entries]
        for st in batch:
            ls.apply(st.labels)
        if batch:
            self.add(batch, clock.take(sum(len(st.entries.entries) for st in batch)), owner)
        for ref in objects:
            reader = ObjectReader(clients, ref, clock)
            labels = ls.apply(dict(reader.obj.labels))
            try:
                while (chunk := reader.next_chunk()) is not None:
                    self.add([new_stream(labels, chunk)], clock.take(len(chunk)), owner)
            finally:
                reader.close()

    # -- sending --------------------------------------------------------------------------

    def flush(self) -> None:
        pending, ids = self.pending, self.pending_ids
        self.pending, self.pending_ids, self.pending_bytes = {}, set(), 0
        for tenant, chunks in pending.items():
            # split into BATCH_SIZE requests (a chunk is never split)
            batch: list[Chunk] = []
            size = 0
            for c in chunks:
                if batch and size + c.size > self.s.batch_size:
                    self._send(tenant, batch, ids)
                    batch, size = [], 0
                batch.append(c)
                size += c.size
            if batch:
                self._send(tenant, batch, ids)

    def _time_left(self) -> float:
        left = getattr(self.context, "get_remaining_time_in_millis", None)
        return left() / 1000 if left else float("inf")

    def _send(self, tenant: str, batch: list[Chunk], ids: set[str]) -> None:
        body = compress(encode_push(batch, self.labels))
        headers = {"X-Scope-OrgID": tenant} if tenant else None
        for attempt in range(BACKOFF.max_retries + 1):
            try:
                r = self.http.post(self.s.write_address, content=body, headers=headers)
                status, detail = r.status_code, ("" if r.status_code < 300 else r.text[:1024])
                retry_after = retry.parse_retry_after(r.headers.get("Retry-After"))
            except httpx.HTTPError as e:
                status, detail, retry_after = 0, f"{type(e).__name__}: {e}", None
            if 200 <= status < 300:
                self.entries += sum(c.count for c in batch)
                return
            wait = retry.delay(BACKOFF, attempt, retry_after)
            if not retry.retriable(status) or attempt == BACKOFF.max_retries or self._time_left() < wait + TIMEOUT + 1:
                raise LokiError(f"Loki did not take a batch of {sum(c.count for c in batch)} entries: "
                                f"status={status or 'error'} attempts={attempt + 1} {detail}".strip(), ids)
            print(f"push to Loki failed (status={status or 'error'} {detail[:200]}), retrying in {wait:.2f}s",
                  file=sys.stderr)
            time.sleep(wait)


# --- the handler ------------------------------------------------------------------------------

_state: dict[str, Any] = {}


def _setup() -> tuple[Settings, httpx.Client, S3Clients]:
    if "settings" not in _state:
        s = load_settings()
        headers = {"Content-Type": "application/x-protobuf", "User-Agent": USER_AGENT}
        if s.bearer_token:
            headers["Authorization"] = f"Bearer {s.bearer_token}"
        auth = httpx.BasicAuth(s.username, s.password) if s.username else None
        http = httpx.Client(timeout=TIMEOUT, verify=not s.skip_tls_verify, auth=auth, headers=headers)
        _state.update(settings=s, http=http, s3=S3Clients(s.lambda_settings.s3))
    return _state["settings"], _state["http"], _state["s3"]


def reset() -> None:
    """Forget the settings read at cold start (tests change the environment between calls)."""
    http = _state.pop("http", None)
    if http is not None:
        http.close()
    _state.clear()


def handler(event: Any, context: Any = None) -> Any:
    s, http, clients = _setup()
    clock = ReceiveClock(time.time_ns())  # entries without a time of their own: 1 ns apart
    ls = s.lambda_settings
    parsed = parse_event(event, keep_stream=ls.keep_stream, receive_ns=clock)
    shipper = Shipper(s, http, context)
    if parsed.kind != SQS:
        shipper.deliver(clients, parsed.streams, parsed.s3_objects, clock)
        shipper.close()
        return None
    batch = SqsBatch(parsed.items)
    for item in batch.pending():
        try:
            shipper.deliver(clients, item.streams, item.s3_objects, clock, item.message_id)
        except S3ReadError as e:
            print(f"SQS message {item.message_id} failed: {e}", file=sys.stderr)
            batch.fail(item.message_id)
        except LokiError as e:
            print(str(e), file=sys.stderr)
            batch.fail(item.message_id, stop=True, also=e.message_ids)
    for item in batch.invalid:
        print(f"invalid event in SQS message {item.message_id} (dropped): {item.error}", file=sys.stderr)
    try:
        shipper.close()
    except LokiError as e:
        print(str(e), file=sys.stderr)
        batch.fail_ids(e.message_ids)
    return {"batchItemFailures": batch.failures()}

if os.environ.get("AWS_LAMBDA_RUNTIME_API"):
    _setup()  # in Lambda: a bad setting fails the cold start, not the first event
