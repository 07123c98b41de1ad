"""RE2, the engine behind Go's regexp (Prometheus relabeling, Loki selectors, Promtail's stages).

Every RE2 regex of the relay is compiled here, with the same options and Go's error wording, and
searched through `span_finder` where speed matters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import re2

OPTIONS = re2.Options()
OPTIONS.log_errors = False  # callers report errors; RE2 would also print them to stderr


class RegexpError(ValueError):
    """An expression RE2 refuses. str() is Go's wording; `detail` is RE2's reason alone."""

    def __init__(self, expression: str, detail: str) -> None:
        super().__init__(f"error parsing regexp: {detail}: `{expression}`")
        self.detail = detail


def compile_regex(expression: str, *, anchored: bool = False) -> Any:
    """`expression` compiled; `anchored` as Prometheus matches: the whole text, `.` matching newline."""
    try:
        return re2.compile("^(?s:" + expression + ")$" if anchored else expression, OPTIONS)
    except re2.error as err:
        reason = err.args[0] if err.args else err
        detail = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise RegexpError(expression, detail) from None


# Each group's byte span (group 0 the whole match); (-1, -1) for a group that took no part.
Spans = Sequence[tuple[int, int]]


class Finder(Protocol):
    def __call__(self, text: bytes, pos: int = 0) -> Spans | None: ...


def public_finder(regex: Any) -> Finder:
    """`span_finder` through google-re2's public API."""
    groups = range(regex.groups + 1)

    def find(text: bytes, pos: int = 0) -> Spans | None:
        m = regex.search(text, pos)
        return None if m is None else [m.span(i) for i in groups]

    return find


def span_finder(regex: Any) -> Finder:
    """An unanchored search on UTF-8 bytes from `pos`, giving every group's span, or None.

    google-re2's `search` on str maps offsets back to characters, and its public API makes a
    generator and a Match object per call: several times the match itself. Searching bytes through
    the extension's `Match` skips both; if the extension does not behave exactly like the public
    API here, the public API is used.
    """
    public = public_finder(regex)
    try:
        match, anchor = regex._regexp.Match, re2._Anchor.UNANCHORED

        def find(text: bytes, pos: int = 0) -> Spans | None:
            spans = match(anchor, text, pos, len(text))
            return spans if spans[0][0] >= 0 else None

        for sample in (b"", b"x", b"a b", "\u00e9\n".encode()):
            if find(sample) != public(sample):
                return public
        return find
    except Exception:  # a google-re2 without these internals
        return public
