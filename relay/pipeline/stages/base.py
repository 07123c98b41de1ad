"""What every Promtail pipeline stage shares: the entry it works on, the stage type, the registry of kinds.

A pipeline runs on a batch of entries at a time (the entries of one stream of one request), stage after
stage, so a stage pays its Python call overhead per batch where it can. A stage module registers its
kind under Promtail's name with `@register("json")`; the factory validates the stage's YAML block and
returns a compiled `Stage`. Everything that can be compiled (regexes, JMESPath, templates, layouts) is
compiled in the factory, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Entry:
    """One log entry in flight through a pipeline, as Promtail's stages see it."""

    labels: dict[str, str]  # this entry's own label set (stages may change it in place)
    line: str
    timestamp: int  # unix nanoseconds
    extracted: dict[str, Any] = field(default_factory=dict)  # Promtail's "extracted map"
    metadata: dict[str, str] = field(default_factory=dict)  # structured metadata sent with the entry


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
    """A compiled stage. Override `process` (one entry; False drops it) or `run` (a whole batch)."""

    kind: str = ""
    # Seconds; when > 0 the relay calls flush_expired() about this often. A stage that overrides
    # flush_expired() and leaves this 0 is polled every quarter second.
    flush_every: float = 0.0

    def process(self, entry: Entry) -> bool:
        return True

    def run(self, entries: list[Entry]) -> list[Entry]:
        process = self.process
        return [e for e in entries if process(e)]

    def flush(self) -> list[Entry]:
        """Entries held back (multiline), given up at shutdown or when their wait ends."""
        return []

    def flush_expired(self) -> list[Entry]:
        """Entries held back whose wait has ended (multiline's max_wait_time); called on a timer."""
        return []


StageFactory = Callable[[Any, BuildContext], Stage]
KINDS: dict[str, StageFactory] = {}


def register(name: str) -> Callable[[StageFactory], StageFactory]:
    def add(factory: StageFactory) -> StageFactory:
        KINDS[name] = factory
        return factory

    return add
