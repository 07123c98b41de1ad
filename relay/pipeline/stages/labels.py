"""`labels`: set labels from the extracted map (`name: source`; an empty source means `name`)."""

from __future__ import annotations

from typing import Any

from ..values import to_string
from .base import BuildContext, Entry, LabelMemo, Stage, register, set_labels
from .block import label_sources


class LabelsStage(Stage):
    kind = "labels"

    def __init__(self, sources: dict[str, str]) -> None:
        self.pairs = list(sources.items())

    def run(self, entries: list[Entry]) -> list[Entry]:
        pairs = self.pairs
        if len(pairs) == 1:
            return self._run_one(entries, *pairs[0])
        memo: LabelMemo = {}
        get = memo.get
        for e in entries:
            extracted = e.extracted
            changes = []
            for name, source in pairs:
                if source in extracted:
                    value = extracted[source]
                    if value.__class__ is not str:
                        value = to_string(value)
                        if value is None:  # a map or list has no label form: skipped, as Promtail
                            continue
                    changes.append((name, value))
            if changes:
                labels = e.labels
                hit = get((id(labels), tuple(changes)))  # set_labels, inlined: this runs per entry
                e.labels = hit[1] if hit is not None else set_labels(labels, tuple(changes), memo)
        return entries

    @staticmethod
    def _run_one(entries: list[Entry], name: str, source: str) -> list[Entry]:
        """One label (the usual config): the new label set is looked up by (label dict, text value)."""
        memo: LabelMemo = {}
        by_text: dict[tuple[int, str], tuple[dict[str, str], dict[str, str]]] = {}
        get = by_text.get
        for e in entries:
            value = e.extracted.get(source)
            if value is None:  # absent, or null: nothing to set
                continue
            labels = e.labels
            if value.__class__ is str:
                hit = get((id(labels), value))
                if hit is None:
                    hit = by_text[(id(labels), value)] = (labels, set_labels(labels, ((name, value),), memo))
                e.labels = hit[1]
                continue
            text = to_string(value)
            if text is not None:  # a map or list has no label form: skipped, as Promtail
                e.labels = set_labels(labels, ((name, text),), memo)
        return entries


@register("labels")
def build(config: Any, ctx: BuildContext) -> Stage:
    return LabelsStage(label_sources(config, "labels", "label stage config cannot be empty"))
