"""What every Promtail pipeline stage shares: the entry it works on, the stage type, the registry of kinds.

A pipeline runs on a batch of entries at a time (the entries of one stream of one request), stage after
stage, so a stage pays its Python call overhead per batch where it can. A stage module registers its
kind under Promtail's name with `@register("json")`; the factory validates the stage's YAML block and
returns a compiled `Stage`. Everything that can be compiled (regexes, JMESPath, templates, layouts) is
compiled in the factory, once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Entry:
    """One log entry in flight through a pipeline, as Promtail's stages see it.

    `labels` is shared: the entries of a stream start with one dict, and a stage that changes an
    entry's labels assigns a new dict (see `set_labels`) instead of changing it in place. Entries
    that end with equal labels then mostly share one dict, so stages and the regrouping after the
    pipeline work per label set by identity, not per entry.
    """

    labels: dict[str, str]  # never changed in place: replaced
    line: str
    timestamp: int  # unix nanoseconds
    extracted: dict[str, Any] = field(default_factory=dict)  # Promtail's "extracted map"
    metadata: dict[str, str] = field(default_factory=dict)  # structured metadata sent with the entry


# One batch's label changes: (id of the old dict, change) -> (old dict, new dict). Holding the old
# dict keeps its id from being reused while the memo lives; make a new memo for every batch.
LabelMemo = dict[tuple[int, Hashable], tuple[dict[str, str], dict[str, str]]]


def set_labels(labels: dict[str, str], pairs: tuple[tuple[str, str], ...], memo: LabelMemo) -> dict[str, str]:
    """`labels` with `pairs` set; the same dict for every entry of the batch asking the same change."""
    key = (id(labels), pairs)
    hit = memo.get(key)
    if hit is None:
        new = dict(labels)
        new.update(pairs)
        hit = memo[key] = (labels, labels if new == labels else new)
    return hit[1]


def drop_labels(labels: dict[str, str], names: frozenset[str], memo: LabelMemo) -> dict[str, str]:
    """`labels` without `names`; shared like `set_labels`."""
    key = (id(labels), names)
    hit = memo.get(key)
    if hit is None:
        new = {k: v for k, v in labels.items() if k not in names}
        hit = memo[key] = (labels, labels if len(new) == len(labels) else new)
    return hit[1]


class StageError(ValueError):
    """An invalid stage config; the message names the key (the pipeline adds job, index and kind)."""


@dataclass(slots=True)
class BuildContext:
    """What a factory may need besides its own block."""

    job: str  # the job name, for metric labels and messages
    # Counts entries a stage dropped on purpose: (reason, entries, bytes). Drop stages use their
    # drop_counter_reason; it ends up in loki_relay_dropped_entries_total.
    count_drop: Callable[[str, int, int], None] = lambda reason, n, size: None
    # Builds a nested pipeline (the match stage's `stages`); filled in by the pipeline module.
    build_nested: Callable[[Any, str], Stage] | None = None
    # Asks the caller to hold the current batch this many seconds before sending it (the limit
    # stage without drop: Promtail blocks the pipeline; the relay holds the request instead).
    hold: Callable[[float], None] = lambda seconds: None
    # The longest an entry may be held; beyond it the entry is dropped (lambda's PIPELINE_TIMEOUT).
    max_hold: float = float("inf")


class Stage:
    """A compiled stage: `run` takes a batch of entries and returns those that go on."""

    kind: str = ""
    # Seconds; when > 0 the relay calls flush_expired() about this often. A stage that overrides
    # flush_expired() and leaves this 0 is polled every quarter second.
    flush_every: float = 0.0

    def run(self, entries: list[Entry]) -> list[Entry]:
        return entries

    def flush(self) -> list[Entry]:
        """Entries held back (multiline), given up at shutdown or when their wait ends."""
        return []

    def flush_expired(self) -> list[Entry]:
        """Entries held back whose wait has ended (multiline's max_wait_time); called on a timer."""
        return []


StageFactory = Callable[[Any, BuildContext], Stage]

# The module of this package that defines each kind. A module is imported the first time a pipeline
# uses its kind, so a process pays only for the stages it runs (the Lambda function's cold start).
MODULES: dict[str, str] = {
    **{kind: kind for kind in (
        "decolorize", "docker", "drop", "eventlogmessage", "geoip", "json", "labelallow", "labeldrop",
        "labels", "limit", "logfmt", "match", "metrics", "multiline", "output", "pack", "regex", "replace",
        "sampling", "static_labels", "structured_metadata", "template", "tenant", "timestamp",
    )},
    "cri": "docker",
    "non_indexed_labels": "structured_metadata",
}


class Kinds(dict[str, StageFactory]):
    """Stage factories by kind, loading a kind's module on first use."""

    def __missing__(self, kind: str) -> StageFactory:
        module = MODULES.get(kind)
        if module is None:
            raise KeyError(kind)
        try:
            importlib.import_module(f"{__package__}.{module}")
        except ImportError as e:  # the Lambda zip leaves prometheus_client out, for one
            raise StageError(f"the {kind} stage needs the {e.name} package, which is not installed") from None
        return dict.__getitem__(self, kind)

    def get(self, kind: str, default: StageFactory | None = None) -> StageFactory | None:  # type: ignore[override]
        try:
            return self[kind]
        except KeyError:
            return default


KINDS = Kinds()


def register(name: str) -> Callable[[StageFactory], StageFactory]:
    def add(factory: StageFactory) -> StageFactory:
        KINDS[name] = factory
        return factory

    return add
