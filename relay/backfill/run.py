"""The backfill engine: list units of work, read them, process them as the job does, send, checkpoint.

A unit is one S3 object or one CloudWatch time window. Before the first push, the units
that may hold entries older than Loki's age limit are counted (prescan.py) and the count
is printed with the policy. Then up to `--concurrency` units are read at once, each in a
worker thread chunk by chunk (reading the next chunk while the previous one is processed),
its entries processed by the job's Processor (static labels, relabel rules, limits; each
entry keeps its own time) and put in the batch that all units share (batch.py), sent at
the client's `batchsize` with the client's retries (429 and Retry-After included). Once
every batch holding a unit's entries has been acknowledged by every client, the unit is
written to the checkpoint. A unit that fails (unreadable object, a batch Loki would not
take) is reported and left out of the checkpoint, so the next run tries it again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import time
from pathlib import Path

from .batch import Batch, Batcher, Chunks, SendFailed, outcome
from .checkpoint import Checkpoint, CheckpointError, default_path
from .cli import Options
from .deps import CHUNK_SIZE, ConfigError, LokiClient, S3Clients, S3ReadError, new_stream, relay_logs
from .job import Setup, setup
from .prescan import Scanned, scan
from .progress import Counts, Progress, clock, human
from .sources import cloudwatch_units, logs_client, s3_units
from .stamps import POLICIES, RECEIVE_TIME, SKIP, OldEntries
from .unit import Parts, Streams, Unit

log = logging.getLogger("relay.backfill")

_POLICY_TEXT = {SKIP: "left out", RECEIVE_TIME: "stamped with the run's start time", "send": "sent as they are"}


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


class Backfill:
    def __init__(self, opts: Options, st: Setup, units: list[Unit], checkpoint: Checkpoint | None,
                 clients: list[LokiClient], counts: Counts, started_ns: int) -> None:
        self.opts = opts
        self.st = st
        self.units = units
        self.checkpoint = checkpoint
        self.clients = clients
        self.c = counts
        self.old = OldEntries(opts.old_entries, st.max_age_ns, started_ns)
        batch_bytes = min((cl.cfg.batchsize for cl in clients), default=1 << 20)
        linger = min((cl.cfg.batchwait for cl in clients), default=1.0)
        self.batcher = Batcher(self.push, batch_bytes, linger)
        self.limit = RateLimit(opts.rate.per_second) if opts.rate else None
        self.limit_bytes = opts.rate is not None and opts.rate.unit == "bytes"
        self.completions: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        queue: asyncio.Queue[Unit] = asyncio.Queue()
        for u in self.units:
            queue.put_nowait(u)

        async def worker() -> None:
            while not queue.empty():
                unit = queue.get_nowait()
                try:
                    batches, lines, size = await self.unit(unit)
                except (S3ReadError, SendFailed, ConfigError) as e:
                    self._fail(unit, str(e))
                    continue
                except Exception as e:  # one unit's surprise (an AWS error ...) must not stop the rest
                    self._fail(unit, f"{type(e).__name__}: {e}")
                    continue
                # The slot goes to the next unit; this one is done when its batches are.
                task = asyncio.ensure_future(self.complete(unit, batches, lines, size))
                self.completions.add(task)
                task.add_done_callback(self.completions.discard)

        try:
            await asyncio.gather(*(worker() for _ in range(min(self.opts.concurrency, max(1, len(self.units))))))
        finally:
            await self.batcher.close()
            while self.completions:
                await asyncio.gather(*self.completions)

    def _fail(self, unit: Unit, why: str) -> None:
        self.c.failed[unit.name] = why
        log.error("backfill of %s failed: %s", unit.name, why)

    def done(self, unit: Unit, lines: int, size: int) -> None:
        self.c.units_done += 1
        self.c.size_done += unit.size
        if unit.log_type:
            self.c.by_type[unit.log_type] = self.c.by_type.get(unit.log_type, 0) + 1
        log.debug("done: %s (%d lines, %d bytes)", unit.name, lines, size)

    async def complete(self, unit: Unit, batches: list[Batch], lines: int, size: int) -> None:
        why = await outcome(unit.id, batches)
        if why:
            self._fail(unit, why)
            return
        if self.checkpoint is not None:
            await asyncio.to_thread(self.checkpoint.mark, unit.id, lines=lines, bytes=size)
        self.done(unit, lines, size)

    async def unit(self, unit: Unit) -> tuple[list[Batch], int, int]:
        """Read, process and hand a unit's entries to the batcher: (its batches, lines, bytes read)."""
        reader = await asyncio.to_thread(unit.open)
        streams = Streams()
        restamp = [self.old.base(unit.id)]
        batches: list[Batch] = []
        lines = 0
        seen_bytes = 0
        nxt: asyncio.Future[Parts | None] = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))
        try:
            while True:
                parts = await nxt
                self.c.bytes += reader.bytes - seen_bytes
                seen_bytes = reader.bytes
                if parts is None:
                    break
                nxt = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))  # read ahead while processing
                for labels, read in parts:
                    entries, old = self.old.apply(streams.entries(labels, read), time.time_ns(), restamp)
                    if old:
                        self.c.old += old
                        if self.old.policy == SKIP:
                            self.c.skipped_old += old
                    if not entries:
                        continue
                    if self.opts.dry_run:
                        lines += len(entries)
                        self.c.lines += len(entries)
                        continue
                    out = self.st.processor.process([new_stream(labels, entries)], "", time.time_ns())
                    if out.dropped:
                        self.c.dropped += sum(out.dropped.values())
                    if not out.chunks:
                        continue
                    n = sum(c.count for cs in out.chunks.values() for c in cs)
                    lines += n
                    if self.limit is not None:
                        size = sum(CHUNK_SIZE(c) for cs in out.chunks.values() for c in cs)
                        await self.limit.take(size if self.limit_bytes else n)
                    batch = await self.batcher.add(unit.id, out.chunks)
                    if not batches or batches[-1] is not batch:
                        batches.append(batch)
        finally:
            if not nxt.done():
                await asyncio.wait([nxt])
            if not nxt.cancelled():
                nxt.exception()  # retrieved: a read error after a send error is not "never retrieved"
            await asyncio.to_thread(reader.close)
        return batches, lines, seen_bytes

    async def push(self, chunks: Chunks, entries: int) -> None:
        """Send one batch to every client. Raises SendFailed."""
        for tenant, cs in chunks.items():
            for client in self.clients:
                to = self.opts.tenant or tenant or client.cfg.tenant_id
                reason = await client.send_batch(to, cs)
                if reason:
                    n = sum(c.count for c in cs)
                    raise SendFailed(f"Loki did not take a batch of {n} entries ({reason}); client {client.name}",
                                     reason)
        self.c.lines += entries
        self.c.batches += 1


def summary(opts: Options, st: Setup, c: Counts, elapsed: float, extra: list[str]) -> str:
    verb = "would send" if opts.dry_run else "sent"
    unit = "windows" if opts.url.startswith("cloudwatch://") else "objects"
    out = [f"backfill {opts.url} job={st.job.name}{' (dry run)' if opts.dry_run else ''}: "
           f"{c.units_done} {unit} done, {verb} {c.lines} lines, read {human(c.bytes, 'B')} in {clock(elapsed)} "
           f"({human(c.units_done / max(elapsed, 1e-9))} {unit}/s, {human(c.lines / max(elapsed, 1e-9))} lines/s)"]
    if c.batches:
        out.append(f"  pushes: {c.batches} ({human(c.lines / c.batches)} lines each on average)")
    if c.by_type:
        out.append("  by log type: " + ", ".join(f"{t} {n}" for t, n in sorted(c.by_type.items())))
    out += extra
    if c.resumed:
        out.append(f"  done by an earlier run (skipped): {c.resumed}")
    if c.old:
        out.append(f"  entries older than reject_old_samples_max_age ({clock(st.max_age_ns / 1e9)}): {c.old}, "
                   f"{_POLICY_TEXT[opts.old_entries]} (--old-entries={opts.old_entries})")
    if c.dropped:
        out.append(f"  dropped by the job's rules (relabel drop, limits): {c.dropped}")
    if c.failed:
        out.append(f"  FAILED {unit}: {len(c.failed)} (not checkpointed; a re-run tries them again)")
        out += [f"    {name}: {why}" for name, why in sorted(c.failed.items())]
    return "\n".join(out)


async def old_entries_first(opts: Options, st: Setup, todo: list[Unit], old: OldEntries, ckpt: Checkpoint,
                            counts: Counts) -> list[Unit]:
    """Count the entries Loki would refuse as too old, say so with the policy, before any push.

    Returns the units still to send: a scanned unit with nothing to send is done here."""
    limit = f"{clock(st.max_age_ns / 1e9)}, {st.max_age_from}"
    if not st.max_age_ns:
        print(f"backfill: reject_old_samples_max_age is 0 ({st.max_age_from}): every entry is sent as it is",
              file=sys.stderr)
        return todo
    cutoff = old.cutoff(time.time_ns())
    suspects = [u for u in todo if u.oldest_ns < cutoff]
    scanned: list[Scanned] = []
    if suspects:
        print(f"backfill: reading {len(suspects)} of {len(todo)} units that may hold entries older than "
              f"reject_old_samples_max_age ({limit}) to count them", file=sys.stderr)
        scanned = await scan(suspects, cutoff, opts.concurrency)
    n_old = sum(s.old for s in scanned)
    unreadable = [s for s in scanned if s.error]
    print(f"backfill: {n_old} entries are older than Loki's reject_old_samples_max_age ({limit}); they will be "
          f"{_POLICY_TEXT[opts.old_entries]} (--old-entries={opts.old_entries}; choices: {', '.join(POLICIES)})"
          + (f"; {len(unreadable)} units could not be read to count" if unreadable else ""), file=sys.stderr)
    finished: set[str] = set()
    for s in scanned:
        to_send = s.entries - (s.old if opts.old_entries == SKIP else 0)
        if s.error or to_send:
            continue
        if not opts.dry_run:
            await asyncio.to_thread(ckpt.mark, s.unit.id, lines=0, bytes=s.bytes)
        finished.add(s.unit.id)
        counts.bytes += s.bytes
        counts.old += s.old
        counts.skipped_old += s.old
        counts.scanned_only += 1
        counts.units_done += 1
        counts.size_done += s.unit.size
        if s.unit.log_type:
            counts.by_type[s.unit.log_type] = counts.by_type.get(s.unit.log_type, 0) + 1
    return [u for u in todo if u.id not in finished]


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
        units, lister = await asyncio.to_thread(s3_units, opts, clients3, st.settings)
        ls = lister.stats
        counts.undated = sum(1 for u in units if not u.dated)
        extra.append(f"  listing: {ls.calls} list requests; objects with no date in the key (included): "
                     f"{counts.undated}; left out by date: {ls.out_of_range}; "
                     f"CloudTrail digest files or folders left out: {ls.digests}")
    else:
        client = logs_client(st.settings, opts.concurrency)
        units, resumed = await asyncio.to_thread(cloudwatch_units, opts, client, st.settings, now_ns, list(ckpt.done))
    todo = [u for u in units if u.id not in ckpt.done]
    counts.resumed = len(units) - len(todo) if is_s3 else resumed
    counts.units_total = len(todo)
    counts.size_total = sum(u.size for u in todo)
    counts.listing_done = True
    print(f"backfill {opts.url}: {len(todo)} to do ({human(counts.size_total, 'B')} stored), "
          f"{counts.resumed} done before", file=sys.stderr)
    old = OldEntries(opts.old_entries, st.max_age_ns, ckpt.started_ns)
    clients: list[LokiClient] = []
    if not opts.dry_run:
        ckpt.open()
        # a dry run counts old entries as it reads; a real run says how many before its first push
        todo = await old_entries_first(opts, st, todo, old, ckpt, counts)
        clients = [LokiClient(c) for c in st.cfg.clients]
    if counts.scanned_only:
        extra.append(f"  read only to count old entries (nothing in them to send): {counts.scanned_only}")
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
        st = setup(opts.job, opts.relay_values, opts.expand_env, opts.max_age_ns)
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
    except KeyboardInterrupt:
        print("interrupted; a re-run continues from the checkpoint", file=sys.stderr)
        return 130
    except Exception as e:
        from botocore.exceptions import BotoCoreError, ClientError

        if not isinstance(e, (BotoCoreError, ClientError)):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1
