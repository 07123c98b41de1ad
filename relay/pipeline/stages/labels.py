"""`labels`: set labels from the extracted map (`name: source`; an empty source means `name`)."""

from __future__ import annotations

from typing import Any

from .base import BuildContext, Entry, Stage, register
from .block import label_sources, to_str


class LabelsStage(Stage):
    kind = "labels"

    def __init__(self, sources: dict[str, str]) -> None:
        self.pairs = list(sources.items())

    def run(self, entries: list[Entry]) -> list[Entry]:
        pairs = self.pairs
        for e in entries:
            extracted = e.extracted
            labels = e.labels
            for name, source in pairs:
                if source in extracted:
                    value = to_str(extracted[source])
                    if value is not None:  # a map or list has no label form: skipped, as Promtail
                        labels[name] = value
        return entries


@register("labels")
def build(config: Any, ctx: BuildContext) -> Stage:
    return LabelsStage(label_sources(config, "labels", "label stage config cannot be empty"))
