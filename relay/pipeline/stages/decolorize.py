"""`decolorize`: remove ANSI color and control sequences from the line (the pattern Loki's `| decolorize` uses)."""

from __future__ import annotations

from typing import Any

import re2

from .base import BuildContext, Entry, Stage, register

ANSI = re2.compile(
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

    def process(self, entry: Entry) -> bool:
        self.run([entry])
        return True


@register("decolorize")
def build(block: Any, ctx: BuildContext) -> Stage:
    return DecolorizeStage()
