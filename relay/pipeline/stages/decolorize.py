"""`decolorize`: remove ANSI color and control sequences from the line (the pattern Loki's `| decolorize` uses)."""

from __future__ import annotations

from typing import Any

from ...regexp import compile_regex
from .base import BuildContext, Entry, Stage, register
from .block import Block

ANSI = compile_regex(
    "[\u001b\u009b][[\\]()#;?]*(?:(?:(?:[a-zA-Z\\d]*(?:;[a-zA-Z\\d]*)*)?\u0007)"
    "|(?:(?:\\d{1,4}(?:;\\d{0,4})*)?[\\dA-PRZcf-ntqry=><~]))"
)


class DecolorizeStage(Stage):
    kind = "decolorize"

    def run(self, entries: list[Entry]) -> list[Entry]:
        sub = ANSI.sub
        for entry in entries:
            line = entry.line
            if "\x1b" in line or "\x9b" in line:
                try:
                    entry.line = sub("", line)
                except UnicodeEncodeError:
                    pass
        return entries


@register("decolorize")
def build(block: Any, ctx: BuildContext) -> Stage:
    Block(block, "decolorize").done()  # the decolorize stage has no settings
    return DecolorizeStage()
