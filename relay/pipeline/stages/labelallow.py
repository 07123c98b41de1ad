"""`labelallow`: keep only the listed labels."""

from __future__ import annotations

from typing import Any

from .base import BuildContext, Entry, LabelMemo, Stage, drop_labels, register
from .block import name_list


class LabelAllowStage(Stage):
    kind = "labelallow"

    def __init__(self, names: list[str]) -> None:
        self.allowed = frozenset(names)

    def run(self, entries: list[Entry]) -> list[Entry]:
        allowed = self.allowed
        memo: LabelMemo = {}
        for e in entries:
            labels = e.labels
            if not labels.keys() <= allowed:
                e.labels = drop_labels(labels, frozenset(labels.keys() - allowed), memo)
        return entries


@register("labelallow")
def build(config: Any, ctx: BuildContext) -> Stage:
    return LabelAllowStage(name_list(config, "labelallow stage config cannot be empty"))
