"""Turn a source's streams into chunks ready to batch, the way Promtail's push target does.

Per stream, in order: static `labels` override incoming ones, `relabel_configs` run,
the tenant is taken from `__tenant_id__` if set, every other `__*` label is removed,
and a stream left with no labels is dropped. The result of that per label set is
cached, so a request pays for rules once per distinct label set, not per entry.

A job with `pipeline_stages` then runs its stages on each stream's entries (as Promtail:
after relabeling and the `__*` removal), and the entries are grouped again into streams by
the label sets the stages left them with; the tenant, `__*` removal and validation are
cached per such final label set. A job without stages never builds an entry object.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from .. import relabel
from ..cache import BoundedCache
from ..config import JobConfig, LimitsConfig
from ..model import LABEL_NAME, TENANT_LABEL, Chunk, Labels, Stream, format_labels
from ..proto import StreamAdapter
from .encode import encode_entries
from .limits import LineLimit, TimeWindow
from .pipeline import Pipeline, build
from .stages.base import Entry


@dataclass(slots=True)
class Outcome:
    """What processing made of one request."""

    chunks: dict[str, list[Chunk]] = field(default_factory=dict)  # tenant ("" = default) -> chunks
    entries: int = 0  # entries accepted
    size: int = 0  # encoded bytes accepted
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> entries
    dropped_bytes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # reasons for invalid streams, for the answer
    truncated: int = 0  # entries cut to max_line_size
    received: int | None = None  # entries taken in, when stages make it differ from accepted + dropped
    hold: float = 0.0  # seconds to hold the request before queueing (limit stage without drop)


@dataclass(slots=True, frozen=True)
class _Resolved:
    labels: str | None  # final label text; None when dropped
    tenant: str | None
    reason: str = ""  # why dropped
    error: str = ""  # a message for the sender when the stream is invalid
    final: Labels | None = None  # the label set itself (what pipeline stages start from)


class Processor:
    def __init__(
        self,
        job: JobConfig,
        limits: LimitsConfig,
        default_rules: Sequence[relabel.Rule] = (),
        pipeline: Pipeline | None = None,
    ) -> None:
        self.static = job.labels
        self.rules = job.relabel if job.has_relabel else list(default_rules)
        self.incoming_ts = job.use_incoming_timestamp
        self.limits = limits
        self.line_limit = LineLimit(limits.max_line_size, limits.max_line_size_truncate) if limits.max_line_size else None
        self.window = TimeWindow.from_limits(limits)  # entries too old / too far ahead for Loki
        self._cache: BoundedCache[Hashable, _Resolved] = BoundedCache()
        self.pipeline = pipeline if pipeline is not None else build(job.pipeline_stages, job.name)
        self._final: BoundedCache[Hashable, _Resolved] = BoundedCache()  # after the stages: (tenant, label items) -> result
        self.flush_every = self.pipeline.flush_every if self.pipeline is not None else 0.0

    @property
    def passes_entries_through(self) -> bool:
        """Whether process() forwards each stream's encoded entries as they are (no stages, no
        receive times, no line limit): a source may then hand it entries it never decoded."""
        return self.pipeline is None and self.incoming_ts and self.line_limit is None

    def resolve(self, labels: Labels) -> _Resolved:
        """Labels after static labels, relabeling and `__` removal (uncached)."""
        working = {**labels, **self.static} if self.static else labels
        result = relabel.process(working, self.rules) if self.rules else dict(working)
        if result is None:
            return _Resolved(None, None, "relabel")
        tenant = result.get(TENANT_LABEL) or None
        # An empty value means "no such label" (Prometheus and Loki both drop it).
        final = {k: v for k, v in result.items() if v and not k.startswith("__")}
        if not final:
            return _Resolved(None, None, "no_labels")
        problem = self._invalid(final)
        if problem:
            return _Resolved(None, None, "invalid", problem)
        return _Resolved(format_labels(final), tenant, final=final)

    def _invalid(self, labels: Labels) -> str:
        lim = self.limits
        if len(labels) > lim.max_label_names_per_series:
            return f"stream has {len(labels)} label names, more than the limit of {lim.max_label_names_per_series}"
        for name, value in labels.items():
            if not LABEL_NAME.fullmatch(name):
                return f"invalid label name {name!r}"
            if len(name) > lim.max_label_name_length:
                return f"label name {name[:64]!r}... is longer than {lim.max_label_name_length} characters"
            if len(value) > lim.max_label_value_length:
                return f"value of label {name!r} is longer than {lim.max_label_value_length} characters"
        return ""

    def process(self, streams: Sequence[Stream], tenant: str, receive_ns: int,
                times: tuple[int, int] | None = None) -> Outcome:
        """`times`: the earliest and latest entry time (Unix ns) of `streams` when the source read
        them anyway; entries inside the time window are then not read again to check it."""
        if self.pipeline is not None:
            return self._staged(streams, tenant, receive_ns)
        out = Outcome()
        by_tenant = out.chunks
        cache = self._cache
        resolve = self.resolve
        rewrite_ts = not self.incoming_ts
        line_limit = self.line_limit
        stamp = receive_ns
        entries = size = 0
        for stream in streams:
            key: Hashable = stream.key
            if key is None:
                key = tuple(stream.labels.items())
            res = cache.get(key)
            if res is None:
                res = cache.put(key, resolve(stream.labels))
            msg = stream.entries
            n = len(msg.entries)
            if n == 0:
                continue
            labels = res.labels
            if labels is None:
                out.dropped[res.reason] += n
                out.dropped_bytes[res.reason] += msg.ByteSize()
                if res.error:
                    out.errors.append(res.error)
                continue
            if rewrite_ts:
                # Receive time, one nanosecond apart so equal lines are not merged by Loki's dedup.
                for e in msg.entries:
                    ts = e.timestamp
                    ts.seconds, ts.nanos = divmod(stamp, 1_000_000_000)
                    stamp += 1
            if line_limit is not None:
                line_limit.apply(msg, out)
                n = len(msg.entries)
                if n == 0:
                    continue
            msg.ClearField("labels")
            msg.ClearField("hash")
            data = msg.SerializeToString()
            chunk = _chunk((labels, data, n, len(data)))
            t = res.tenant or tenant
            bucket = by_tenant.get(t)
            if bucket is None:
                by_tenant[t] = [chunk]
            else:
                bucket.append(chunk)
            entries += n
            size += chunk[3]
        out.entries = entries
        out.size = size
        if not rewrite_ts:  # receive times need no check
            self._check_times(out, receive_ns, times)
        return out

    def _check_times(self, out: Outcome, now_ns: int, times: tuple[int, int] | None = None) -> None:
        """The final times against limits_config's window, as Loki will judge them (both paths).
        `times`: bounds of the entries' times known before (only without stages, which may change them)."""
        if self.window is not None and not (times is not None and self.window.inside(times, now_ns)):
            self.window.enforce(out, now_ns)


    # ---- with pipeline stages ---------------------------------------------------------

    def _staged(self, streams: Sequence[Stream], tenant: str, receive_ns: int) -> Outcome:
        assert self.pipeline is not None
        out = Outcome()
        cache = self._cache
        resolve = self.resolve
        run = self.pipeline.run
        rewrite_ts = not self.incoming_ts
        stamp = receive_ns
        received = 0
        groups: dict[Hashable, tuple[str, list[Entry]]] = {}
        for stream in streams:
            key: Hashable = stream.key
            if key is None:
                key = tuple(stream.labels.items())
            res = cache.get(key)
            if res is None:
                res = cache.put(key, resolve(stream.labels))
            msg = stream.entries
            n = len(msg.entries)
            if n == 0:
                continue
            received += n
            base = res.final
            if base is None:
                out.dropped[res.reason] += n
                out.dropped_bytes[res.reason] += msg.ByteSize()
                if res.error:
                    out.errors.append(res.error)
                continue
            # The entries share the label dict (stages replace it, never change it); the extracted
            # map starts as a copy of the labels, as Promtail's.
            copy = base.copy
            entries: list[Entry] = []
            append = entries.append
            if rewrite_ts:
                # Receive time, one nanosecond apart so equal lines are not merged by Loki's dedup.
                for e in msg.entries:
                    sm = e.structuredMetadata
                    append(Entry(base, e.line, stamp, copy(), {p.name: p.value for p in sm} if sm else {}))
                    stamp += 1
            else:
                for e in msg.entries:
                    t = e.timestamp
                    sm = e.structuredMetadata
                    append(Entry(base, e.line, t.seconds * 1_000_000_000 + t.nanos, copy(),
                                 {p.name: p.value for p in sm} if sm else {}))
            self._group(run(entries), res.tenant or tenant, groups)
        self._encode(groups, out)
        self._check_times(out, receive_ns)
        out.received = received
        out.hold = self.pipeline.take_hold()
        return out

    def flush(self, final: bool = False) -> Outcome:
        """What the stages held back (multiline) and now give up; `final` at shutdown: everything."""
        out = Outcome(received=0)
        if self.pipeline is None:
            return out
        groups: dict[Hashable, tuple[str, list[Entry]]] = {}
        self._group(self.pipeline.flush() if final else self.pipeline.flush_expired(), "", groups)
        self._encode(groups, out)
        self._check_times(out, time.time_ns())
        return out

    @staticmethod
    def _group(entries: list[Entry], tenant: str, groups: dict[Hashable, tuple[str, list[Entry]]]) -> None:
        """Entries into groups by (default tenant, final label set)."""
        # Entries with equal labels nearly always share the dict (see Entry): hash each dict once.
        # The memo holds the dicts, so no id is reused while it lives.
        by_id: dict[int, tuple[Labels, list[Entry]]] = {}
        prev: Labels | None = None
        bucket: list[Entry] = []
        for e in entries:
            labels = e.labels
            if labels is not prev:
                hit = by_id.get(id(labels))
                if hit is None:
                    key = (tenant, frozenset(labels.items()))
                    group = groups.get(key)
                    if group is None:
                        group = groups[key] = (tenant, [])
                    hit = by_id[id(labels)] = (labels, group[1])
                bucket = hit[1]
                prev = labels
            bucket.append(e)

    def _settle(self, key: Hashable, tenant: str, labels: Labels) -> _Resolved:
        """Tenant, `__*` removal and validation of a label set the stages produced (cached)."""
        res = self._final.get(key)
        if res is None:
            tenant = labels.get(TENANT_LABEL) or tenant
            final = {k: v for k, v in labels.items() if v and not k.startswith("__")}
            problem = self._invalid(final) if final else ""
            if not final:
                res = _Resolved(None, None, "no_labels")
            elif problem:
                res = _Resolved(None, None, "invalid", problem)
            else:
                res = _Resolved(format_labels(final), tenant)
            self._final.put(key, res)
        return res

    def _encode(self, groups: dict[Hashable, tuple[str, list[Entry]]], out: Outcome) -> None:
        drops, drop_bytes = self.pipeline.take_drops() if self.pipeline is not None else ({}, {})
        for reason, n in drops.items():
            out.dropped[reason] += n
            out.dropped_bytes[reason] += drop_bytes.get(reason, 0)
        by_tenant = out.chunks
        line_limit = self.line_limit
        for key, (tenant, entries) in groups.items():
            res = self._settle(key, tenant, entries[0].labels)
            if res.labels is None:
                out.dropped[res.reason] += len(entries)
                out.dropped_bytes[res.reason] += sum(len(e.line) for e in entries)
                if res.error:
                    out.errors.append(res.error)
                continue
            if line_limit is None:
                data, n, refused = encode_entries(entries)
                for e in refused:
                    out.dropped["invalid"] += 1
                    out.dropped_bytes["invalid"] += len(e.line)
            else:
                msg = _adapter(entries, out)
                line_limit.apply(msg, out)
                n = len(msg.entries)
                data = msg.SerializeToString()
            if n == 0:
                continue
            chunk = _chunk((res.labels, data, n, len(data)))
            t = res.tenant or ""
            bucket = by_tenant.get(t)
            if bucket is None:
                by_tenant[t] = [chunk]
            else:
                bucket.append(chunk)
            out.entries += n
            out.size += len(data)


def _adapter(entries: list[Entry], out: Outcome) -> StreamAdapter:
    """The entries as protobuf; an entry upb refuses (a lone surrogate, a time beyond int64) is dropped as invalid."""
    msg = StreamAdapter()
    add = msg.entries.add
    # Filling messages field by field is cheaper than upb's conversion from dicts, most of all for
    # structured metadata (a list of dicts).
    for e in entries:
        try:
            pe = add(line=e.line)
        except (ValueError, TypeError):
            out.dropped["invalid"] += 1
            out.dropped_bytes["invalid"] += len(e.line)
            continue
        try:
            t = pe.timestamp
            t.seconds, t.nanos = divmod(e.timestamp, 1_000_000_000)
            md = e.metadata
            if md:
                pair = pe.structuredMetadata.add
                for name, value in md.items():
                    pair(name=name, value=value)
        except (ValueError, TypeError):
            del msg.entries[-1]
            out.dropped["invalid"] += 1
            out.dropped_bytes["invalid"] += len(e.line)
    return msg


# Chunk((labels, data, count, size)) without NamedTuple's own __new__, a Python-level call per stream.
_chunk = functools.partial(tuple.__new__, Chunk)
