"""The units of work of a source: the S3 objects of a prefix, or the time windows of a log group."""

from __future__ import annotations

import logging
import time
from typing import Any

from . import cloudwatch, s3
from .cli import Options
from .deps import LambdaSettings, ObjectReader, S3Clients, S3Ref, s3logs
from .prescan import SCAN_MARGIN_NS
from .unit import Parts, Reader, Unit

log = logging.getLogger("relay.backfill")


class S3Reader:
    def __init__(self, clients: S3Clients, bucket: str, key: str, receive_ns: int, log_type: str,
                 settings: LambdaSettings) -> None:
        self.reader = _object_reader(clients, bucket, key, receive_ns, log_type)
        self.labels = settings.apply(dict(self.reader.obj.labels))

    @property
    def bytes(self) -> int:
        return int(self.reader.stats.bytes)

    def next_chunk(self) -> Parts | None:
        chunk = self.reader.next_chunk()
        return None if chunk is None else [(self.labels, chunk)]

    def close(self) -> None:
        self.reader.close()


def _object_reader(clients: S3Clients, bucket: str, key: str, receive_ns: int, log_type: str) -> ObjectReader:
    reader = ObjectReader(clients, S3Ref(bucket, key), receive_ns)
    if log_type and reader.obj.log_type != log_type:  # --type: parse as that type, with its type label
        labels = {"__aws_log_type": log_type, "__aws_s3_bucket": bucket, "__aws_s3_key": key}
        reader.obj = s3logs.S3Object(bucket, key, log_type, labels)
    return reader


def s3_units(opts: Options, clients: S3Clients, settings: LambdaSettings) -> tuple[list[Unit], s3.Lister]:
    bucket, prefix = s3.split_url(opts.url)
    lister = s3.Lister(clients.get(), bucket, prefix, opts.since_ns, opts.until_ns)
    units = []
    for obj in lister.objects():
        # Lines without a time of their own get the object's LastModified: near their real
        # time, and the same on every run (so a resend is recognised by Loki as a duplicate).
        def opener(key: str = obj.key, modified: int = obj.modified_ns) -> Reader:
            return S3Reader(clients, bucket, key, modified, opts.log_type, settings)

        log_type = opts.log_type or s3logs.classify(bucket, obj.key).log_type
        units.append(Unit(obj.key, f"s3://{bucket}/{obj.key}", obj.size, _oldest(obj, log_type), opener, log_type,
                          obj.dated))
    return units, lister


def _oldest(obj: s3.Listed, log_type: str) -> int:
    """The earliest time the object's entries may have (see Unit.oldest_ns)."""
    if log_type == s3logs.UNKNOWN:
        return obj.modified_ns  # no time of their own: every entry gets LastModified
    if obj.key_ns is not None:
        return obj.key_ns - SCAN_MARGIN_NS
    return 0  # a log type with times of its own, and no date in the key: anything


# --- CloudWatch ------------------------------------------------------------------------------


def logs_client(settings: LambdaSettings, concurrency: int) -> Any:
    """boto3 CloudWatch Logs client: the job's s3 block's region and keys; endpoint from the
    standard AWS variables (AWS_ENDPOINT_URL_CLOUDWATCH_LOGS, AWS_ENDPOINT_URL)."""
    import boto3
    from botocore.config import Config as BotoConfig

    s = settings.s3
    session = boto3.session.Session(aws_access_key_id=s.access_key_id or None,
                                    aws_secret_access_key=s.secret_access_key or None,
                                    aws_session_token=s.session_token or None)
    cfg = BotoConfig(retries={"max_attempts": s.max_attempts, "mode": "standard"},
                     max_pool_connections=max(10, concurrency * 2), connect_timeout=10, read_timeout=60)
    return session.client("logs", region_name=s.region or None, config=cfg)


def cloudwatch_units(opts: Options, client: Any, settings: LambdaSettings, now_ns: int,
                     done: list[str]) -> tuple[list[Unit], int]:
    """The windows (or their parts) not done yet, and how many windows were done entirely."""
    group = cloudwatch.split_url(opts.url)
    owner, created_ms = cloudwatch.describe_group(client, group)
    since_ms = opts.since_ns // 1_000_000 if opts.since_ns is not None else created_ms
    until_ms = (opts.until_ns if opts.until_ns is not None else now_ns) // 1_000_000 + 1
    streams = cloudwatch.stream_names(client, group, opts.stream_prefix) if opts.stream_prefix else None
    if streams is not None and not streams:
        log.warning("no log stream of %s starts with %r", group, opts.stream_prefix)
        return [], 0
    units = []
    finished = cloudwatch.done_windows(done)
    resumed = 0
    for whole in cloudwatch.windows(since_ms, until_ms, opts.window_ms):
        parts = cloudwatch.not_done(whole, finished)
        resumed += not parts
        for window in parts:
            units.append(_window_unit(client, group, owner, window, settings, streams))
    return units, resumed


def _window_unit(client: Any, group: str, owner: str, window: tuple[int, int], settings: LambdaSettings,
                 streams: list[str] | None) -> Unit:
    def opener() -> Reader:
        r = cloudwatch.WindowReader(client, group, owner, window, settings.keep_stream, streams)
        r.labels = settings.apply(r.labels)
        return r

    start, end = window
    name = f"{group} {_iso(start * 1_000_000)}..{_iso(end * 1_000_000)}"
    # FilterLogEvents returns only the window's events: none is older than its start
    return Unit(cloudwatch.unit_id(*window), name, 0, start * 1_000_000, opener, "cloudwatch")


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 1_000_000_000))
