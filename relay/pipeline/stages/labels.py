"""`labels`: set labels from the extracted map (`name: source`; an empty source means `name`)."""

from __future__ import annotations

from typing import Any

from .base import BuildContext, Entry, LabelMemo, Stage, register, set_labels
from .block import label_sources, to_str


class LabelsStage(Stage):
    kind = "labels"

    def __init__(self, sources: dict[str, str]) -> None:
        self.pairs = list(sources.items())

    def run(self, entries: list[Entry]) -> list[Entry]:
        pairs = self.pairs
        memo: LabelMemo = {}
        get = memo.get
        for e in entries:
            extracted = e.extracted
            changes = []
            for name, source in pairs:
                if source in extracted:
                    value = extracted[source]
                    if value.__class__ is not str:
                        value = to_str(value)
                        if value is None:  # a map or list has no label form: skipped, as Promtail
                            continue
                    changes.append((name, value))
            if changes:
                labels = e.labels
                hit = get((id(labels), tuple(changes)))  # set_labels, inlined: this runs per entry
                e.labels = hit[1] if hit is not None else set_labels(labels, tuple(changes), memo)
        return entries


@register("labels")
def build(config: Any, ctx: BuildContext) -> Stage:
    return LabelsStage(label_sources(config, "labels", "label stage config cannot be empty"))
