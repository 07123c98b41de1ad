"""`labeldrop`: remove the listed labels."""

from __future__ import annotations

from typing import Any

from .base import BuildContext, Entry, LabelMemo, Stage, drop_labels, register
from .block import name_list


class LabelDropStage(Stage):
    kind = "labeldrop"

    def __init__(self, names: list[str]) -> None:
        self.names = frozenset(names)

    def run(self, entries: list[Entry]) -> list[Entry]:
        names = self.names
        memo: LabelMemo = {}
        for e in entries:
            e.labels = drop_labels(e.labels, names, memo)
        return entries


@register("labeldrop")
def build(config: Any, ctx: BuildContext) -> Stage:
    return LabelDropStage(name_list(config, "labeldrop stage config cannot be empty"))
