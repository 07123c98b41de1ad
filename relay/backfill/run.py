"""The backfill engine: list units of work, read them, process them as the job does, send, checkpoint.

A unit is one S3 object or one CloudWatch time window. Up to `--concurrency` units are
in flight; each is read in a worker thread chunk by chunk (reading the next chunk while
the previous one is sent), its entries processed by the job's Processor (static labels,
relabel rules, limits; each entry keeps its own time) and sent in batches of the
client's `batchsize` with the client's retries (429 and Retry-After included). Once
every client has acknowledged the unit's last batch it is written to the checkpoint.
A unit that fails (unreadable object, a batch Loki would not take) is reported and left
out of the checkpoint, so the next run tries it again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import cloudwatch, s3
from .checkpoint import Checkpoint, CheckpointError, default_path
from .cli import Options
from .deps import (
    CHUNK_SIZE,
    DEFAULT_RULES,
    KINDS,
    LAMBDA_KIND,
    Chunk,
    Config,
    ConfigError,
    JobConfig,
    Labels,
    LambdaSettings,
    LokiClient,
    ObjectReader,
    Processor,
    S3Clients,
    S3ReadError,
    S3Ref,
    ServerConfig,
    build_config,
    new_stream,
    parse_flags,
    relay_logs,
    s3logs,
)
from .progress import Counts, Progress, clock, human
from .stamps import SKIP, Apart, OldEntries, keep_apart

log = logging.getLogger("relay.backfill")

BUILTIN_JOB = "backfill"

Parts = list[tuple[Labels, list[tuple[int, str]]]]


class Reader(Protocol):
    @property
    def bytes(self) -> int: ...  # bytes read so far (decompressed)

    def next_chunk(self) -> Parts | None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class Unit:
    id: str  # checkpoint key: the S3 key, or the CloudWatch window
    name: str  # for people: s3://bucket/key, or the window's times
    size: int  # stored bytes (for the ETA); 0 when unknown
    time_ns: int  # the latest its entries are likely to be: the key's date, else LastModified; a window's end
    open: Callable[[], Reader]  # blocking
    log_type: str = ""
    dated: bool = True


class SendFailed(Exception):
    pass


class RateLimit:
    """Token bucket that may go into debt: a batch waits until the average rate allows it."""

    def __init__(self, per_second: float) -> None:
        self.rate = per_second
        self.tokens = per_second  # one second of burst
        self.at = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, n: int) -> None:
        async with self.lock:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
            self.at = now
            self.tokens -= n
            if self.tokens < 0:
                await asyncio.sleep(-self.tokens / self.rate)


# --- S3 -------------------------------------------------------------------------------------


class S3Reader:
    def __init__(self, clients: S3Clients, bucket: str, key: str, receive_ns: int, log_type: str,
                 settings: LambdaSettings) -> None:
        self.reader = _object_reader(clients, bucket, key, receive_ns, log_type)
        self.labels = settings.apply(dict(self.reader.obj.labels))

    @property
    def bytes(self) -> int:
        return self.reader.stats.bytes

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


def s3_units(opts: Options, clients: S3Clients, settings: LambdaSettings, counts: Counts) -> tuple[list[Unit], s3.Lister]:
    bucket, prefix = s3.split_url(opts.url)
    lister = s3.Lister(clients.get(), bucket, prefix, opts.since_ns, opts.until_ns)
    units = []
    for obj in lister.objects():
        # Lines without a time of their own get the object's LastModified: near their real
        # time, and the same on every run (so a resend is recognised by Loki as a duplicate).
        def opener(key: str = obj.key, modified: int = obj.modified_ns) -> Reader:
            return S3Reader(clients, bucket, key, modified, opts.log_type, settings)

        log_type = opts.log_type or s3logs.classify(bucket, obj.key).log_type
        when = obj.key_ns if obj.key_ns is not None else obj.modified_ns
        units.append(Unit(obj.key, f"s3://{bucket}/{obj.key}", obj.size, when, opener, log_type, obj.dated))
    return units, lister


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
    return Unit(cloudwatch.unit_id(*window), name, 0, end * 1_000_000, opener, "cloudwatch")


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 1_000_000_000))


# --- the run ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Setup:
    cfg: Config
    job: JobConfig
    settings: LambdaSettings
    processor: Processor


def setup(opts: Options) -> Setup:
    """The relay config and the job whose processing the backfill applies. Raises ConfigError."""
    cfg = build_config(parse_flags(opts.relay_args))
    path = any(a.startswith("-config.file=") for a in opts.relay_args)
    jobs = cfg.jobs if path else []
    if opts.job:
        found = [j for j in jobs if j.name == opts.job]
        if not found:
            raise ConfigError(f"--job: no job named {opts.job!r} in the config"
                              + (f" (jobs: {', '.join(j.name for j in jobs)})" if jobs else ""))
        job = found[0]
    else:
        job = next((j for j in jobs if j.kind == LAMBDA_KIND), None) or JobConfig(
            name=BUILTIN_JOB, kind=LAMBDA_KIND, listen=ServerConfig(), use_incoming_timestamp=True)
    settings = job.settings
    if not isinstance(settings, LambdaSettings):
        settings = LambdaSettings()
    kind = KINDS.get(job.kind)
    rules = kind.default_rules if kind is not None else DEFAULT_RULES
    # Every entry keeps its own time, whatever the job says about live traffic.
    processor = Processor(dataclasses.replace(job, use_incoming_timestamp=True), cfg.limits, rules)
    return Setup(cfg, job, settings, processor)


class Backfill:
    def __init__(self, opts: Options, st: Setup, units: list[Unit], checkpoint: Checkpoint | None,
                 clients: list[LokiClient], counts: Counts, started_ns: int) -> None:
        self.opts = opts
        self.st = st
        self.units = units
        self.checkpoint = checkpoint
        self.clients = clients
        self.c = counts
        self.old = OldEntries(opts.old_entries, opts.max_age_ns, started_ns)
        self.batch_bytes = min((cl.cfg.batchsize for cl in clients), default=1 << 20)
        self.limit = RateLimit(opts.rate.per_second) if opts.rate else None
        self.limit_bytes = opts.rate is not None and opts.rate.unit == "bytes"

    async def run(self) -> None:
        queue: asyncio.Queue[Unit] = asyncio.Queue()
        for u in self.units:
            queue.put_nowait(u)

        async def worker() -> None:
            while not queue.empty():
                unit = queue.get_nowait()
                try:
                    lines = await self.unit(unit)
                except (S3ReadError, SendFailed, ConfigError) as e:
                    self._fail(unit, str(e))
                    continue
                except Exception as e:
                    self._fail(unit, f"{type(e).__name__}: {e}")
                    continue
                self.c.units_done += 1
                self.c.size_done += unit.size
                if unit.log_type:
                    self.c.by_type[unit.log_type] = self.c.by_type.get(unit.log_type, 0) + 1
                log.debug("done: %s (%d lines)", unit.name, lines)

        await asyncio.gather(*(worker() for _ in range(min(self.opts.concurrency, max(1, len(self.units))))))

    def _fail(self, unit: Unit, why: str) -> None:
        self.c.failed[unit.name] = why
        log.error("backfill of %s failed: %s", unit.name, why)

    async def unit(self, unit: Unit) -> int:
        reader = await asyncio.to_thread(unit.open)
        apart: dict[Any, Apart] = {}
        restamp = [self.old.base(unit.id)]
        pending: dict[str, list[Chunk]] = {}
        pending_size = 0
        sent = 0
        seen_bytes = 0
        nxt: asyncio.Future[Parts | None] = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))
        try:
            while True:
                parts = await nxt
                self.c.bytes += reader.bytes - seen_bytes
                seen_bytes = reader.bytes
                if parts is None:
                    break
                nxt = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))  # read ahead while sending
                for labels, entries in parts:
                    key = tuple(labels.items())
                    state = apart.get(key)
                    if state is None:
                        state = apart[key] = Apart()
                    entries = keep_apart(entries, state)
                    entries, old = self.old.apply(entries, time.time_ns(), restamp)
                    if old:
                        self.c.old += old
                        if self.old.policy == SKIP:
                            self.c.skipped_old += old
                    if not entries:
                        continue
                    if self.opts.dry_run:
                        self.c.lines += len(entries)
                        sent += len(entries)
                        continue
                    out = self.st.processor.process([new_stream(labels, entries)], "", time.time_ns())
                    if out.dropped:
                        self.c.dropped += sum(out.dropped.values())
                    for tenant, chunks in out.chunks.items():
                        pending.setdefault(tenant, []).extend(chunks)
                        pending_size += sum(map(CHUNK_SIZE, chunks))
                    if pending_size >= self.batch_bytes:
                        sent += await self.flush(pending)
                        pending_size = 0
            sent += await self.flush(pending)
        finally:
            if not nxt.done():
                await asyncio.wait([nxt])
            if not nxt.cancelled():
                nxt.exception()  # retrieved: a read error after a send error is not "never retrieved"
            await asyncio.to_thread(reader.close)
        if self.checkpoint is not None and not self.opts.dry_run:
            await asyncio.to_thread(self.checkpoint.mark, unit.id, lines=sent, bytes=seen_bytes)
        return sent

    async def flush(self, pending: dict[str, list[Chunk]]) -> int:
        """Send what is pending to every client; returns the entries sent. Raises SendFailed."""
        sent = 0
        for tenant, chunks in pending.items():
            if not chunks:
                continue
            n = sum(c.count for c in chunks)
            if self.limit is not None:
                await self.limit.take(sum(map(CHUNK_SIZE, chunks)) if self.limit_bytes else n)
            for client in self.clients:
                to = self.opts.tenant or tenant or client.cfg.tenant_id
                reason = await client.send_batch(to, chunks)
                if reason:
                    raise SendFailed(f"Loki did not take a batch of {n} entries ({reason}); client {client.name}")
            sent += n
            self.c.lines += n
        pending.clear()
        return sent


def summary(opts: Options, st: Setup, c: Counts, elapsed: float, extra: list[str]) -> str:
    verb = "would send" if opts.dry_run else "sent"
    unit = "windows" if opts.url.startswith("cloudwatch://") else "objects"
    out = [f"backfill {opts.url} job={st.job.name}{' (dry run)' if opts.dry_run else ''}: "
           f"{c.units_done} {unit} done, {verb} {c.lines} lines, read {human(c.bytes, 'B')} in {clock(elapsed)} "
           f"({human(c.units_done / max(elapsed, 1e-9))} {unit}/s, {human(c.lines / max(elapsed, 1e-9))} lines/s)"]
    if c.by_type:
        out.append("  by log type: " + ", ".join(f"{t} {n}" for t, n in sorted(c.by_type.items())))
    out += extra
    if c.resumed:
        out.append(f"  done by an earlier run (skipped): {c.resumed}")
    if c.old:
        how = {"skip": "left out", "receive-time": "stamped with the run's start time", "send": "sent as they are"}
        out.append(f"  entries older than reject_old_samples_max_age ({clock(opts.max_age_ns / 1e9)}): {c.old}, "
                   f"{how[opts.old_entries]} (--old-entries={opts.old_entries})")
    if c.dropped:
        out.append(f"  dropped by the job's rules (relabel drop, limits): {c.dropped}")
    if c.failed:
        out.append(f"  FAILED {unit}: {len(c.failed)} (not checkpointed; a re-run tries them again)")
        out += [f"    {name}: {why}" for name, why in sorted(c.failed.items())]
    return "\n".join(out)


async def _main(opts: Options, st: Setup, now_ns: int) -> int:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=opts.concurrency * 2 + 4))
    counts = Counts()
    extra: list[str] = []
    is_s3 = opts.url.startswith("s3://")
    source = opts.url + (f" type={opts.log_type}" if opts.log_type else "") + \
        (f" stream-prefix={opts.stream_prefix}" if opts.stream_prefix else "")
    path = Path(opts.checkpoint) if opts.checkpoint else default_path(source, st.job.name)
    ckpt = Checkpoint(path, source, st.job.name, now_ns)
    if ckpt.load():
        log.info("resuming from checkpoint %s: %d units done", path, len(ckpt.done))
    started = time.monotonic()
    if is_s3:
        clients3 = S3Clients(st.settings.s3)
        units, lister = await asyncio.to_thread(s3_units, opts, clients3, st.settings, counts)
        ls = lister.stats
        counts.undated = sum(1 for u in units if not u.dated)
        extra.append(f"  listing: {ls.calls} list requests; objects with no date in the key (included): "
                     f"{counts.undated}; left out by date: {ls.out_of_range}; CloudTrail digest files or folders left out: {ls.digests}")
    else:
        client = logs_client(st.settings, opts.concurrency)
        units, resumed = await asyncio.to_thread(cloudwatch_units, opts, client, st.settings, now_ns, list(ckpt.done))
    todo = [u for u in units if u.id not in ckpt.done]
    counts.resumed = len(units) - len(todo) if is_s3 else resumed
    counts.units_total = len(todo)
    counts.size_total = sum(u.size for u in todo)
    counts.listing_done = True
    old = OldEntries(opts.old_entries, opts.max_age_ns, ckpt.started_ns)
    cutoff = old.cutoff(time.time_ns())
    stale = sum(1 for u in todo if u.time_ns < cutoff)
    print(f"backfill {opts.url}: {len(todo)} to do ({human(counts.size_total, 'B')} stored), "
          f"{counts.resumed} done before", file=sys.stderr)
    if stale:
        print(f"backfill: {stale} of them are dated (by key, else by when written) more than {clock(opts.max_age_ns / 1e9)} ago, so their entries "
              f"are older than Loki's reject_old_samples_max_age; they will be "
              f"{'left out' if opts.old_entries == 'skip' else 'stamped with the run start time' if opts.old_entries == 'receive-time' else 'sent as they are'}"
              f" (--old-entries=skip|receive-time|send; --dry-run counts the entries)", file=sys.stderr)
    clients: list[LokiClient] = []
    if not opts.dry_run:
        clients = [LokiClient(c) for c in st.cfg.clients]
        ckpt.open()
    progress = Progress(counts, interval=opts.progress_interval)
    progress.start()
    try:
        await Backfill(opts, st, todo, None if opts.dry_run else ckpt, clients, counts, ckpt.started_ns).run()
    finally:
        await progress.stop()
        ckpt.close()
        for cl in clients:
            await cl.close(0)
    print(summary(opts, st, counts, time.monotonic() - started, extra))
    return 1 if counts.failed else 0


def run_command(opts: Options) -> int:
    try:
        st = setup(opts)
    except ConfigError as e:
        print(f"invalid config: {e}", file=sys.stderr)
        return 1
    relay_logs.setup(st.cfg.server.log_level, st.cfg.server.log_format)
    if st.cfg.server.log_level != "debug":
        logging.getLogger("botocore").setLevel(logging.WARNING)  # "found credentials in ..." per client
    try:
        return asyncio.run(_main(opts, st, time.time_ns()))
    except CheckpointError as e:
        print(f"checkpoint: {e}", file=sys.stderr)
        return 1
    except LookupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        from botocore.exceptions import BotoCoreError, ClientError

        if not isinstance(e, (BotoCoreError, ClientError)):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; a re-run continues from the checkpoint", file=sys.stderr)
        return 130
