"""`metrics`: counters, gauges and histograms from entries, on the relay's /metrics.

As Promtail: each metric is named `prefix + name` (prefix `promtail_custom_` by default), its
series are labelled with the entry's labels (`__*` ones left out), and a series nobody updated
for `max_idle_duration` (default 5m, at least 1s) disappears at the next scrape. A metric reads
the extracted value `source` (default: its own name); `value` makes it count only entries whose
value is that text. Counters: `action` inc or add, `match_all` (every entry, no source needed),
`count_entry_bytes` (with match_all and add: the line's bytes). Gauges: set, inc, dec, add, sub.
Histograms: observe into `buckets` (Prometheus' defaults when none are given).
"""

from __future__ import annotations

import math
import re
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ... import metrics as relay_metrics
from ..gotime import parse_duration
from ..values import to_float, to_string
from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block

DEFAULT_PREFIX = "promtail_custom_"
DEFAULT_IDLE = 300.0
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

COUNTER_ACTIONS = ("inc", "add")
GAUGE_ACTIONS = ("set", "inc", "dec", "add", "sub")


class _Series:
    __slots__ = ("counts", "labels", "last", "total", "value")

    def __init__(self, labels: dict[str, str], buckets: int) -> None:
        self.labels = labels
        self.value = 0.0  # counter or gauge value; histogram sum
        self.counts = [0] * buckets  # histogram: per bucket (not cumulative)
        self.total = 0  # histogram observations
        self.last = time.monotonic()


class MetricVec:
    """One custom metric: its series by label set, expiring when idle."""

    def __init__(self, name: str, kind: str, help_text: str, max_idle: float, buckets: tuple[float, ...] = ()) -> None:
        self.name = name
        self.kind = kind
        self.help = help_text
        self.max_idle = max_idle
        self.buckets = buckets
        self.series: dict[frozenset[tuple[str, str]], _Series] = {}
        self.lock = threading.Lock()  # scrapes may run while entries are processed

    def get(self, labels: dict[str, str]) -> _Series:
        clean = {k: v for k, v in labels.items() if not k.startswith("__") and _LABEL_NAME.fullmatch(k)}
        key = frozenset(clean.items())
        s = self.series.get(key)
        if s is None:
            with self.lock:
                s = self.series[key] = _Series(clean, len(self.buckets) + 1)
        return s

    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        now = time.monotonic()
        with self.lock:
            for key in [k for k, s in self.series.items() if now - s.last >= self.max_idle]:
                del self.series[key]
            live = list(self.series.values())
        for s in live:
            if self.kind != "histogram":
                yield self.name, s.labels, s.value
                continue
            cumulative = 0
            for bound, count in zip((*self.buckets, math.inf), s.counts, strict=False):
                cumulative += count
                yield self.name + "_bucket", {**s.labels, "le": _le(bound)}, float(cumulative)
            yield self.name + "_sum", s.labels, s.value
            yield self.name + "_count", s.labels, float(s.total)


def _le(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(float(bound))


class CustomMetrics(Collector):
    """Every metrics stage's series, in one collector on the relay's registry.

    Vectors are held weakly: a pipeline that is thrown away (a config checked, then built again
    to run) takes its series with it. Stages of different jobs may share a metric name, as in
    Promtail; their series are exposed together.
    """

    def __init__(self) -> None:
        self.vecs: weakref.WeakSet[MetricVec] = weakref.WeakSet()

    def add(self, vec: MetricVec) -> None:
        for other in list(self.vecs):
            if other.name == vec.name and other.kind != vec.kind:
                raise StageError(f"metric {vec.name} is already defined as a {other.kind}, not a {vec.kind}")
        self.vecs.add(vec)

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for vec in sorted(self.vecs, key=lambda v: v.name):
            family = families.get(vec.name)
            if family is None:
                kind = vec.kind
                if kind == "counter" and not vec.name.endswith("_total"):
                    # The text format names a counter's samples <family>_total; without that
                    # suffix the series keeps its exact name and is exposed untyped.
                    kind = "unknown"
                base = vec.name[:-len("_total")] if kind == "counter" else vec.name
                family = families[vec.name] = Metric(base, vec.help, kind)
            for name, labels, value in vec.samples():
                family.add_sample(name, labels, value)
        return iter(families.values())


COLLECTOR = CustomMetrics()
relay_metrics.REGISTRY.register(COLLECTOR)


class _Metric:
    __slots__ = ("action", "count_bytes", "match_all", "source", "value", "vec")

    def __init__(self, vec: MetricVec, source: str, action: str, value: str | None, match_all: bool,
                 count_bytes: bool) -> None:
        self.vec = vec
        self.source = source
        self.action = action
        self.value = value
        self.match_all = match_all
        self.count_bytes = count_bytes


class MetricsStage(Stage):
    kind = "metrics"

    def __init__(self, metrics: list[_Metric]) -> None:
        self.metrics = metrics

    def run(self, entries: list[Entry]) -> list[Entry]:
        now = time.monotonic()
        for m in self.metrics:
            vec = m.vec
            prev: dict[str, str] | None = None
            series: _Series | None = None
            for e in entries:
                labels = e.labels
                if m.match_all:
                    amount: Any = len(e.line.encode()) if m.count_bytes else None
                elif m.source in e.extracted:
                    amount = e.extracted[m.source]
                else:
                    continue
                if m.value is not None and to_string(amount) != m.value:
                    continue
                number = 1.0 if m.action in ("inc", "dec") else to_float(amount)
                if number is None:
                    continue  # no number in it: nothing recorded, no series made (as Promtail)
                if prev is None or (labels is not prev and labels != prev):
                    series = vec.get(labels)
                    prev = labels
                assert series is not None
                _record(vec.kind, m.action, series, number, vec.buckets, now)
        return entries


def _record(kind: str, action: str, s: _Series, f: float, buckets: tuple[float, ...], now: float) -> None:
    if kind == "histogram":
        i = 0
        while i < len(buckets) and f > buckets[i]:
            i += 1
        s.counts[i] += 1
        s.total += 1
        s.value += f
    elif action == "inc":
        s.value += 1.0
    elif action == "dec":
        s.value -= 1.0
    else:
        if action == "add":
            if kind == "counter" and f < 0:
                return  # a counter cannot go down (Prometheus' client would panic)
            s.value += f
        elif action == "sub":
            s.value -= f
        else:  # set
            s.value = f
    s.last = now


def _counter(name: str, c: Block) -> tuple[str, str | None, bool, bool]:
    match_all = c.boolean("match_all")
    count_bytes = c.boolean("count_entry_bytes")
    value = c.opt_string("value")
    action = c.string("action").lower()
    c.done()
    if not action:
        raise StageError(f"{name}: counter action must be defined as either `inc` or `add`")
    if action not in COUNTER_ACTIONS:
        raise StageError(f"{name}: action {action} is not valid, action must be either `inc` or `add`")
    if match_all and value is not None:
        raise StageError(f"{name}: `match_all: true` cannot be combined with `value`, please remove `match_all` or `value`")
    if count_bytes and not match_all:
        raise StageError(f"{name}: `count_entry_bytes: true` can only be set with `match_all: true`")
    if count_bytes and action != "add":
        raise StageError(f"{name}: `count_entry_bytes: true` can only be used with `action: add`")
    return action, value, match_all, count_bytes


@register("metrics")
def build(config: Any, ctx: BuildContext) -> Stage:
    if config is None:
        raise StageError("empty metric stage configuration")
    if not isinstance(config, dict):
        raise StageError("metrics stage config must be a mapping of metric names to metric configs")
    out: list[_Metric] = []
    for raw_name, raw in config.items():
        name = str(raw_name)
        b = Block(raw, f"metrics {name}")
        kind = b.string("type").lower()
        description = b.string("description")
        source = b.opt_string("source")
        prefix = b.string("prefix") or DEFAULT_PREFIX
        idle = b.opt_string("max_idle_duration")
        inner = b.raw("config")
        b.done()
        if kind not in ("counter", "gauge", "histogram"):
            raise StageError(f"{name}: invalid metric type '{kind}', metric type must be one of 'counter', 'gauge', or 'histogram'")
        max_idle = DEFAULT_IDLE
        if idle is not None:
            try:
                max_idle = parse_duration(idle)
            except ValueError as e:
                raise StageError(f"{name}: max_idle_duration could not be parsed as a time.Duration: '{e}'") from None
            if max_idle < 1.0:
                raise StageError(f"{name}: max_idle_duration less than 1s not allowed")
            max_idle = float(int(max_idle))  # whole seconds, as Promtail keeps it
        full = prefix + name
        if not _METRIC_NAME.fullmatch(full):
            raise StageError(f"{name}: invalid metric name {full!r}")
        c = Block(inner, f"metrics {name} config")
        value: str | None = None
        match_all = count_bytes = False
        buckets: tuple[float, ...] = ()
        if kind == "counter":
            action, value, match_all, count_bytes = _counter(name, c)
        elif kind == "gauge":
            value = c.opt_string("value")
            action = c.string("action").lower()
            c.done()
            if not action:
                raise StageError(f"{name}: gauge action must be defined as `set`, `inc`, `dec`, `add`, or `sub`")
            if action not in GAUGE_ACTIONS:
                raise StageError(f"{name}: action {action} is not valid, action must be `set`, `inc`, `dec`, `add`, or `sub`")
        else:
            action = "observe"
            value = c.opt_string("value")
            raw_buckets = c.raw("buckets")
            c.done()
            if raw_buckets is None:
                buckets = DEFAULT_BUCKETS
            elif isinstance(raw_buckets, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                       for x in raw_buckets):
                buckets = tuple(sorted(float(x) for x in raw_buckets))
            else:
                raise StageError(f"{name}: buckets: expected a list of numbers, got {raw_buckets!r}")
        vec = MetricVec(full, kind, description, max_idle, buckets)
        COLLECTOR.add(vec)
        out.append(_Metric(vec, source if source is not None else name, action, value, match_all, count_bytes))
    return MetricsStage(out)
