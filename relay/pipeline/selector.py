"""Loki stream selectors with line filters, as Promtail's match stage reads them.

    {name="value", name!="value", name=~"regex", name!~"regex"} |= "text" != "text" |~ "re" !~ "re"

Label matchers are Prometheus matchers (regexes fully anchored, RE2); line filters are
substring tests and unanchored RE2 searches, all of which must pass.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..regexp import RegexpError, compile_regex

_TOKEN = re.compile(r"""\s*(?:(?P<op>=~|!~|!=|\|=|\|~|=|\{|\}|,)|(?P<ident>[a-zA-Z_][a-zA-Z0-9_]*)|(?P<str>"(?:[^"\\\n]|\\.)*"|`[^`]*`)|(?P<bad>\S))""")


class SelectorError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: str  # "=", "!=", "=~", "!~"
    value: str
    regex: Any = None

    def matches(self, labels: dict[str, str]) -> bool:
        v = labels.get(self.name, "")
        op = self.op
        if op == "=":
            return v == self.value
        if op == "!=":
            return v != self.value
        hit = self.regex.fullmatch(v) is not None
        return hit if op == "=~" else not hit


@dataclass(frozen=True, slots=True)
class Selector:
    matchers: tuple[Matcher, ...]
    filters: tuple[tuple[str, str, Any], ...]  # (op, text, regex)

    def match_labels(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def line_filter(self) -> Callable[[str], bool] | None:
        """One function testing every line filter, or None when there are none."""
        tests = [_line_test(op, text, regex) for op, text, regex in self.filters]
        if not tests:
            return None
        if len(tests) == 1:
            return tests[0]
        return lambda line: all(t(line) for t in tests)


def _line_test(op: str, text: str, regex: Any) -> Callable[[str], bool]:
    if op == "|=":
        return lambda line: text in line
    if op == "!=":
        return lambda line: text not in line
    if op == "|~":
        return lambda line: regex.search(line) is not None
    return lambda line: regex.search(line) is None


def _unquote(tok: str) -> str:
    if tok[0] == "`":
        return tok[1:-1]
    try:
        # Go string literal escapes are a subset of Python's, except \x and octal on bytes; close enough
        # for selectors, and never evaluates code.
        value = ast.literal_eval(tok)
    except (ValueError, SyntaxError) as e:
        raise SelectorError(f"invalid string {tok}: {e}") from None
    if not isinstance(value, str):
        raise SelectorError(f"invalid string {tok}")
    return value


def _compile(expr: str, anchored: bool) -> Any:
    try:
        return compile_regex(expr, anchored=anchored)
    except RegexpError as e:
        raise SelectorError(str(e)) from None


def parse(text: str) -> Selector:
    """Parse a selector; raises SelectorError naming the position of the problem."""
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing whitespace is left
            break
        pos = m.end()
        kind = m.lastgroup
        if kind is None:
            break
        if kind == "bad":
            raise SelectorError(f"parse error at col {m.start(kind) + 1}: unexpected {m.group(kind)!r}")
        tokens.append((kind, m.group(kind), m.start(kind) + 1))
    i = 0

    def take(kind: str, value: str | None = None) -> str:
        nonlocal i
        if i >= len(tokens):
            raise SelectorError(f"parse error: unexpected end of selector, expected {value or kind}")
        k, v, col = tokens[i]
        if k != kind or (value is not None and v != value):
            raise SelectorError(f"parse error at col {col}: unexpected {v!r}, expected {value or kind}")
        i += 1
        return v

    take("op", "{")
    matchers: list[Matcher] = []
    while True:
        name = take("ident")
        if i >= len(tokens) or tokens[i][0] != "op" or tokens[i][1] not in ("=", "!=", "=~", "!~"):
            col = tokens[i][2] if i < len(tokens) else len(text)
            raise SelectorError(f"parse error at col {col}: expected one of = != =~ !~ after {name}")
        op = take("op")
        value = _unquote(take("str"))
        matchers.append(Matcher(name, op, value, _compile(value, True) if op in ("=~", "!~") else None))
        if i < len(tokens) and tokens[i] == ("op", ",", tokens[i][2]):
            i += 1
            continue
        take("op", "}")
        break
    filters: list[tuple[str, str, Any]] = []
    while i < len(tokens):
        k, op, col = tokens[i]
        if k != "op" or op not in ("|=", "!=", "|~", "!~"):
            raise SelectorError(f"parse error at col {col}: unexpected {op!r}, expected a line filter (|= != |~ !~)")
        i += 1
        value = _unquote(take("str"))
        filters.append((op, value, _compile(value, False) if op in ("|~", "!~") else None))
    return Selector(tuple(matchers), tuple(filters))
