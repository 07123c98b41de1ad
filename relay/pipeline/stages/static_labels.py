"""`static_labels`: set fixed labels (an empty value sets nothing, as in Promtail)."""

from __future__ import annotations

from typing import Any

from ..values import to_string
from .base import BuildContext, Entry, LabelMemo, Stage, StageError, register, set_labels
from .block import LABEL_NAME


class StaticLabelsStage(Stage):
    kind = "static_labels"

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels

    def run(self, entries: list[Entry]) -> list[Entry]:
        if self.labels:
            pairs = tuple(self.labels.items())
            memo: LabelMemo = {}
            for e in entries:
                e.labels = set_labels(e.labels, pairs, memo)
        return entries


@register("static_labels")
def build(config: Any, ctx: BuildContext) -> Stage:
    if config is None:
        raise StageError("static_labels stage config cannot be empty")
    if not isinstance(config, dict):
        raise StageError("static_labels stage config must be a mapping of label names to values")
    labels: dict[str, str] = {}
    for name, value in config.items():
        name = str(name)
        if not LABEL_NAME.fullmatch(name):
            raise StageError(f"invalid label name: {name}")
        text = to_string(value) if value is not None else ""
        if text is None:
            raise StageError(f"{name}: expected a label value, got {value!r}")
        if text:
            labels[name] = text
    return StaticLabelsStage(labels)
