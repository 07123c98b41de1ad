"""`labeldrop`: remove the listed labels."""

from __future__ import annotations

from typing import Any

from .base import BuildContext, Entry, Stage, register
from .block import name_list


class LabelDropStage(Stage):
    kind = "labeldrop"

    def __init__(self, names: list[str]) -> None:
        self.names = list(dict.fromkeys(names))

    def run(self, entries: list[Entry]) -> list[Entry]:
        names = self.names
        for e in entries:
            pop = e.labels.pop
            for name in names:
                pop(name, None)
        return entries


@register("labeldrop")
def build(config: Any, ctx: BuildContext) -> Stage:
    return LabelDropStage(name_list(config, "labeldrop stage config cannot be empty"))
