"""`drop`: drop entries that meet every condition given (an AND of all of them).

Conditions, as Promtail 3.4.5: `longer_than` (bytes of the line), `older_than` (entry time before
now minus the duration), `source` (one name or a list; alone: all present in the extracted
map), `value` (the sources' values joined by `separator` equal it), `expression` (an RE2 regex
searched in the joined sources' values, or in the line when there is no source). Dropped
entries are counted with `drop_counter_reason` (default `drop_stage`).
"""

from __future__ import annotations

import re
import time
from typing import Any

from ..gotime import parse_duration
from ..values import to_string
from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block, compile_regex

_BYTE_UNITS = {"": 1, "B": 1}
for _i, _u in enumerate("KMGTPE", 1):
    _BYTE_UNITS[_u] = _BYTE_UNITS[_u + "B"] = 1 << (10 * _i)
_BYTES = re.compile(r"([0-9]+)\s*([A-Z]*)")


def parse_bytes(text: str) -> int:
    """Loki's flagext.ByteSize (c2h5oh/datasize, upper-cased): "512", "1KB" or "1K" (1024), "4MB" ..."""
    m = _BYTES.fullmatch(text.strip().upper())
    if m is None or m.group(2) not in _BYTE_UNITS:
        raise ValueError(f"invalid size {text!r}")
    return int(m.group(1)) * _BYTE_UNITS[m.group(2)]


class DropStage(Stage):
    kind = "drop"

    def __init__(self, ctx: BuildContext, reason: str, sources: list[str] | None, separator: str,
                 regex: Any, older_than: float | None, longer_than: int | None) -> None:
        self.count_drop = ctx.count_drop
        self.reason = reason
        self.sources = sources
        self.separator = separator
        self.regex = regex
        self.older_than_ns = None if older_than is None else int(older_than * 1e9)
        self.longer_than = longer_than
        self.value: str | None = None  # set for `value`: an exact comparison, no regex needed

    def run(self, entries: list[Entry]) -> list[Entry]:
        if self.value is not None and self.longer_than is None and self.older_than_ns is None \
                and self.sources is not None and len(self.sources) == 1:
            return self._run_value(entries)
        keep: list[Entry] = []
        dropped = size = 0
        cutoff = time.time_ns() - self.older_than_ns if self.older_than_ns is not None else 0
        drop = self.should_drop
        for e in entries:
            if drop(e, cutoff):
                dropped += 1
                size += len(e.line)
            else:
                keep.append(e)
        if dropped:
            self.count_drop(self.reason, dropped, size)
        return keep

    def _run_value(self, entries: list[Entry]) -> list[Entry]:
        """The common `source` + `value` form, in one loop."""
        source, value = self.sources[0], self.value  # type: ignore[index]
        keep: list[Entry] = []
        append = keep.append
        dropped = size = 0
        for e in entries:
            v = e.extracted.get(source, "")  # absent: compared as "" (Promtail joins no values)
            if v.__class__ is not str:
                v = to_string(v)
                if v is None:
                    append(e)
                    continue
            if v == value:
                dropped += 1
                size += len(e.line)
            else:
                append(e)
        if dropped:
            self.count_drop(self.reason, dropped, size)
        return keep

    def should_drop(self, e: Entry, cutoff: int) -> bool:
        if self.longer_than is not None:
            line = e.line
            # len() counts characters; only lines with more than limit/4 of them can exceed it in bytes.
            if len(line) * 4 <= self.longer_than or len(line.encode()) <= self.longer_than:
                return False
        if self.older_than_ns is not None and not e.timestamp < cutoff:
            return False
        sources, regex = self.sources, self.regex
        if sources is not None:
            extracted = e.extracted
            if regex is None:
                return all(s in extracted for s in sources)
            values = []
            for s in sources:
                if s in extracted:
                    text = to_string(extracted[s])
                    if text is None:
                        return False
                    values.append(text)
            joined = self.separator.join(values)
            if self.value is not None:
                return joined == self.value  # `^value$` of the quoted value: plain equality
            return regex.search(joined) is not None
        if regex is not None:
            return regex.search(e.line) is not None
        return True


@register("drop")
def build(config: Any, ctx: BuildContext) -> Stage:
    b = Block(config, "drop", weak=True)
    raw_source = b.raw("source")
    value = b.opt_string("value")
    expression = b.opt_string("expression")
    older = b.opt_string("older_than")
    longer = b.opt_string("longer_than")
    reason = b.string("drop_counter_reason") or "drop_stage"
    separator = b.string("separator", ";")
    b.done()
    if raw_source is None and expression is None and older is None and longer is None:
        raise StageError("drop stage config must contain at least one of `source`, `expression`, `older_than` or `longer_than`")
    sources: list[str] | None = None
    if raw_source is not None:
        if isinstance(raw_source, str):
            sources = [raw_source]
        elif isinstance(raw_source, list) and all(isinstance(s, str) for s in raw_source):
            sources = list(raw_source)
        else:
            raise StageError("drop stage source invalid type should be string or list of strings")
    older_than = None
    if older is not None:
        try:
            older_than = parse_duration(older)
        except ValueError as e:
            raise StageError(f"drop stage invalid duration, {older} cannot be converted to a duration: {e}") from None
    if value is not None and sources is None:
        raise StageError("drop stage config must contain `source` if `value` is specified")
    if value is not None and expression is not None:
        raise StageError("drop stage config error, `value` and `expression` cannot both be defined at the same time.")
    regex = None
    if expression is not None:
        regex = compile_regex(expression, "drop stage regex compilation error")
    if value is not None:
        regex = compile_regex("^" + _quote_meta(value) + "$", "drop stage value")
    longer_than = None
    if longer is not None:
        try:
            longer_than = parse_bytes(longer)
        except ValueError as e:
            raise StageError(f"drop stage failed to parse longer_than to bytes: {e}") from None
    stage = DropStage(ctx, reason, sources, separator, regex, older_than, longer_than)
    stage.value = value
    return stage


def _quote_meta(text: str) -> str:
    return "".join("\\" + c if c in r"\.+*?()|[]{}^$" else c for c in text)
