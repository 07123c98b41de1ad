"""`output`: replace the log line with an extracted value (left alone when missing or not a scalar)."""

from __future__ import annotations

from typing import Any

from ..values import to_string
from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block


class OutputStage(Stage):
    kind = "output"

    def __init__(self, source: str) -> None:
        self.source = source

    def run(self, entries: list[Entry]) -> list[Entry]:
        source = self.source
        for entry in entries:
            value = entry.extracted.get(source, entry)
            if value is entry:
                continue
            if type(value) is str:
                entry.line = value
            else:
                text = to_string(value)
                if text is not None:
                    entry.line = text
        return entries


@register("output")
def build(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block, "output")
    source = conf.string("source")
    conf.done()
    if not source:
        raise StageError("output source value is required if output is specified")
    return OutputStage(source)
