"""Promtail's `pipeline_stages`: build the stages of a job once, then run batches of entries through them.

A pipeline is a list of one-key mappings, `- kind: block`, as in Promtail. Every block is
validated and compiled when the config is read; an error names the job, the stage's index and
kind, and the key: `job "api" pipeline_stages[2] (json): expressions: ...`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..config import ConfigError
from .stages.base import KINDS, BuildContext, Entry, Stage, StageError


class Pipeline(Stage):
    """Stages run in order on a batch; also a Stage itself, for the match stage's nested `stages`."""

    kind = "pipeline"

    def __init__(self, stages: list[Stage], drops: Counter[str], drop_bytes: Counter[str],
                 holds: list[float] | None = None) -> None:
        self.stages = stages
        self.holds = holds if holds is not None else []  # seconds stages asked to hold the batch
        self.drops = drops  # reason -> entries dropped on purpose, since the last take_drops()
        self.drop_bytes = drop_bytes
        waits = [_period(s) for s in stages]
        self.flush_every = min((w for w in waits if w > 0), default=0.0)

    def run(self, entries: list[Entry]) -> list[Entry]:
        for stage in self.stages:
            if not entries:
                break
            entries = stage.run(entries)
        return entries

    def _drain(self, final: bool) -> list[Entry]:
        out: list[Entry] = []
        stages = self.stages
        for i, stage in enumerate(stages):
            held = stage.flush() if final else stage.flush_expired()
            if not held:
                continue
            for later in stages[i + 1:]:
                if not held:
                    break
                held = later.run(held)
            out += held
        return out

    def flush_expired(self) -> list[Entry]:
        """Entries whose wait ended (multiline), through the rest of the pipeline."""
        return self._drain(False)

    def flush(self) -> list[Entry]:
        """Everything still held back, through the rest of the pipeline (at shutdown)."""
        return self._drain(True)

    def take_hold(self) -> float:
        """The longest hold a stage asked for since the last call (limit without drop)."""
        longest = max(self.holds, default=0.0)
        self.holds.clear()
        return longest

    def take_drops(self) -> tuple[Counter[str], Counter[str]]:
        drops, size = Counter(self.drops), Counter(self.drop_bytes)
        self.drops.clear()
        self.drop_bytes.clear()
        return drops, size


POLL = 0.25  # seconds between flush_expired() calls for stages that give no period of their own


def _period(stage: Stage) -> float:
    if stage.flush_every > 0:
        return stage.flush_every
    if type(stage).flush_expired is not Stage.flush_expired:
        return POLL
    return 0.0


def _kind_and_block(item: Any) -> tuple[str, Any]:
    if not isinstance(item, dict):
        raise StageError("invalid YAML config, make sure each stage of your pipeline is a YAML object "
                         f"(must end with a `:`), check stage `- {item}`")
    if len(item) != 1:
        raise StageError("pipeline stage must contain only one key" if item else "pipeline stage cannot be empty")
    ((kind, block),) = item.items()
    if not isinstance(kind, str):
        raise StageError("pipeline stage key must be a string")
    return kind, block


def _build_stages(raw: Any, ctx: BuildContext, where: str) -> list[Stage]:
    """Compile a list of stages; errors are StageError prefixed with `where[i] (kind): `."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise StageError(f"{where}: expected a list of stages, got {type(raw).__name__}")
    out: list[Stage] = []
    for i, item in enumerate(raw):
        kind = ""
        try:
            kind, block = _kind_and_block(item)
            factory = KINDS.get(kind)
            if factory is None:
                raise StageError(f"Unknown stage type: {kind}")
            stage = factory(block, ctx)
            stage.kind = stage.kind or kind
            out.append(stage)
        except StageError as e:
            raise StageError(f"{where}[{i}]{f' ({kind})' if kind else ''}: {e}") from None
    return out


def build(raw: Any, job: str, where: str = "pipeline_stages", max_hold: float = float("inf")) -> Pipeline | None:
    """The job's compiled pipeline, or None when it has no stages. Raises ConfigError."""
    if not raw:
        return None
    drops: Counter[str] = Counter()
    drop_bytes: Counter[str] = Counter()
    holds: list[float] = []

    def count_drop(reason: str, n: int, size: int) -> None:
        drops[reason] += n
        drop_bytes[reason] += size

    def nested(stages_raw: Any, name: str) -> Stage:
        return Pipeline(_build_stages(stages_raw, ctx, "stages"), drops, drop_bytes, holds)

    ctx = BuildContext(job=job, count_drop=count_drop, build_nested=nested, hold=holds.append, max_hold=max_hold)
    try:
        return Pipeline(_build_stages(raw, ctx, where), drops, drop_bytes, holds)
    except StageError as e:
        raise ConfigError(f'job "{job}" {e}') from None
