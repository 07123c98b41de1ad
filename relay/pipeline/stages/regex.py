"""`regex`: match an RE2 expression against the line (or an extracted value); named groups go to the extracted map.

As Go's FindStringSubmatch: an unanchored search, and a named group that took no part stores "".
"""

from __future__ import annotations

from typing import Any

from ...regexp import span_finder
from ..values import to_string
from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block, compile_regex

COMPILE_ERROR = "could not compile regular expression"


class RegexStage(Stage):
    kind = "regex"

    def __init__(self, regex: Any, source: str | None) -> None:
        self.regex = regex
        self.source = source
        self.groups = [(name, index) for name, index in regex.groupindex.items()]
        self.find = span_finder(regex)

    def run(self, entries: list[Entry]) -> list[Entry]:
        find = self.find
        groups = self.groups
        source = self.source
        for entry in entries:
            extracted = entry.extracted
            text: str | None
            if source is None:
                text = entry.line
            elif source in extracted:
                text = to_string(extracted[source])
                if text is None:
                    continue
            else:
                continue
            try:
                raw = text.encode()
            except UnicodeEncodeError:  # a lone surrogate from a JSON escape: nothing RE2 can read
                continue
            spans = find(raw)
            if spans is None:
                continue
            ascii_text = len(raw) == len(text)  # byte offsets are character offsets
            for name, index in groups:
                start, end = spans[index]
                if start < 0:
                    extracted[name] = ""
                elif ascii_text:
                    extracted[name] = text[start:end]
                else:
                    extracted[name] = raw[start:end].decode("utf-8", "replace")
        return entries


@register("regex")
def build(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block, "regex")
    expression = conf.string("expression")
    source = conf.opt_string("source")
    conf.done()
    if not expression:
        raise StageError("expression is required")
    if source == "":
        raise StageError("empty source")
    return RegexStage(compile_regex(expression, COMPILE_ERROR), source)
