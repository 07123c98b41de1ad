"""`regex`: match an RE2 expression against the line (or an extracted value); named groups go to the extracted map.

As Go's FindStringSubmatch: an unanchored search, and a named group that took no part stores "".
"""

from __future__ import annotations

from typing import Any

import re2

from ..values import Block, to_string
from .base import BuildContext, Entry, Stage, StageError, register

RE2_OPTIONS = re2.Options()
RE2_OPTIONS.log_errors = False


def compile_re2(expression: str) -> Any:
    """An RE2 regex, or StageError with Promtail's wording."""
    try:
        return re2.compile(expression, RE2_OPTIONS)
    except re2.error as err:
        detail = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else str(err)
        raise StageError(f"could not compile regular expression: {detail}") from None


class RegexStage(Stage):
    kind = "regex"

    def __init__(self, regex: Any, source: str | None) -> None:
        self.regex = regex
        self.source = source
        self.groups = [(name, index) for name, index in regex.groupindex.items()]

    def run(self, entries: list[Entry]) -> list[Entry]:
        search = self.regex.search
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
                match = search(text)
            except UnicodeEncodeError:  # a lone surrogate from a JSON escape: nothing RE2 can read
                continue
            if match is None:
                continue
            for name, index in groups:
                extracted[name] = match.group(index) or ""
        return entries

    def process(self, entry: Entry) -> bool:
        self.run([entry])
        return True


@register("regex")
def build(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block)
    expression = conf.string("expression")
    source = conf.opt_string("source")
    if not expression:
        raise StageError("expression is required")
    if source == "":
        raise StageError("empty source")
    return RegexStage(compile_re2(expression), source)
