"""`regex`: match an RE2 expression against the line (or an extracted value); named groups go to the extracted map.

As Go's FindStringSubmatch: an unanchored search, and a named group that took no part stores "".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


Spans = Sequence[tuple[int, int]]


def span_finder(regex: Any) -> Callable[[bytes], Spans | None]:
    """An unanchored search on UTF-8 bytes giving each group's byte span ((-1, -1) if it took no part).

    google-re2's `search` on str maps offsets back to characters and costs several times the match
    itself; searching bytes through the extension's `Match` skips that. Falls back to the public API
    if the extension does not behave as expected.
    """

    def public(raw: bytes) -> Spans | None:
        m = regex.search(raw)
        return None if m is None else [m.span(i) for i in range(regex.groups + 1)]

    try:
        match, anchor = regex._regexp.Match, re2._Anchor.UNANCHORED

        def find(raw: bytes) -> Spans | None:
            spans = match(anchor, raw, 0, len(raw))
            return spans if spans[0][0] >= 0 else None

        for sample in (b"", b"x", "\u00e9\n".encode(), b"a b"):
            if find(sample) != public(sample):
                return public
        return find
    except Exception:
        return public


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
