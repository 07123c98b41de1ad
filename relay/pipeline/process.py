"""Turn a source's streams into chunks ready to batch, the way Promtail's push target does.

Per stream, in order: static `labels` override incoming ones, `relabel_configs` run,
the tenant is taken from `__tenant_id__` if set, every other `__*` label is removed,
and a stream left with no labels is dropped. The result of that per label set is
cached, so a request pays for rules once per distinct label set, not per entry.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from .. import relabel
from ..config import JobConfig, LimitsConfig
from ..model import LABEL_NAME, TENANT_LABEL, Chunk, Labels, Stream, format_labels
from .limits import LineLimit

CACHE_SIZE = 50_000


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


@dataclass(slots=True, frozen=True)
class _Resolved:
    labels: str | None  # final label text; None when dropped
    tenant: str | None
    reason: str = ""  # why dropped
    error: str = ""  # a message for the sender when the stream is invalid


class Processor:
    def __init__(
        self,
        job: JobConfig,
        limits: LimitsConfig,
        default_rules: Sequence[relabel.Rule] = (),
    ) -> None:
        self.static = job.labels
        self.rules = job.relabel if job.has_relabel else list(default_rules)
        self.incoming_ts = job.use_incoming_timestamp
        self.limits = limits
        self.line_limit = LineLimit(limits.max_line_size, limits.max_line_size_truncate) if limits.max_line_size else None
        self._cache: dict[Hashable, _Resolved] = {}

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
        return _Resolved(format_labels(final), tenant)

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

    def process(self, streams: Sequence[Stream], tenant: str, receive_ns: int) -> Outcome:
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
                if len(cache) >= CACHE_SIZE:
                    cache.clear()
                res = cache[key] = resolve(stream.labels)
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
        return out


# Chunk((labels, data, count, size)) without NamedTuple's own __new__, a Python-level call per stream.
_chunk = functools.partial(tuple.__new__, Chunk)
