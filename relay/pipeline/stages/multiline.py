"""`multiline`: join the lines of a block (a first line matching `firstline` and what follows it) into one entry.

Per stream (label set): until a stream's first `firstline` match its lines pass unchanged; from then on
every line joins the current block. A new first line, `max_lines` lines, or `max_wait_time` without a
new line in that stream closes the block; the joined entry has the first line's labels, timestamp and
extracted values, lines joined with "\\n".

Held blocks leave through `flush_expired()` (the pipeline calls it from a timer; `next_deadline()` says
when) and `flush()` (shutdown). Promtail drops structured metadata from a joined entry; we keep the
first line's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ...regexp import span_finder
from ..gotime import parse_duration
from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block, compile_regex

MAX_LINES = 128
MAX_WAIT = 3.0

@dataclass(slots=True)
class _Block:
    start: Entry
    lines: list[str] = field(default_factory=list)
    last_seen: float = 0.0  # monotonic time of the last line added


class MultilineStage(Stage):
    kind = "multiline"

    def __init__(self, regex: Any, max_lines: int, max_wait: float) -> None:
        self.regex = regex
        self.max_lines = max_lines
        self.max_wait = max_wait
        # Streams that have seen a first line; the block is None between a flush and the next line.
        self.streams: dict[frozenset[tuple[str, str]], _Block | None] = {}
        self.lock = threading.Lock()
        self.find = span_finder(regex)

    def _is_first(self, line: str) -> bool:
        try:
            return self.find(line.encode()) is not None
        except UnicodeEncodeError:
            return False

    @staticmethod
    def _joined(block: _Block) -> Entry:
        start = block.start
        return Entry(labels=dict(start.labels), line="\n".join(block.lines), timestamp=start.timestamp,
                     extracted=dict(start.extracted), metadata=dict(start.metadata))

    def run(self, entries: list[Entry]) -> list[Entry]:
        out: list[Entry] = []
        now = time.monotonic()
        with self.lock:
            streams = self.streams
            for entry in entries:
                key = frozenset(entry.labels.items())
                first = self._is_first(entry.line)
                if key not in streams:
                    if not first:
                        out.append(entry)
                        continue
                    streams[key] = None
                block = streams[key]
                if first:
                    if block is not None and block.lines:
                        out.append(self._joined(block))
                    block = streams[key] = _Block(entry)
                elif block is None:
                    continue  # cannot happen: a stream's state starts at a first line
                block.lines.append(entry.line)
                block.last_seen = now
                if len(block.lines) == self.max_lines:
                    out.append(self._joined(block))
                    block.lines = []  # later lines keep joining under the same first entry, as in Promtail
        return out

    def next_deadline(self) -> float | None:
        """The monotonic time at which the oldest held block's wait ends, or None if nothing is held."""
        with self.lock:
            times = [b.last_seen for b in self.streams.values() if b is not None and b.lines]
        return min(times) + self.max_wait if times else None

    def flush_expired(self, now: float | None = None) -> list[Entry]:
        """Joined entries of the blocks that got no line for `max_wait_time`."""
        now = time.monotonic() if now is None else now
        out = []
        with self.lock:
            for block in self.streams.values():
                if block is not None and block.lines and now - block.last_seen >= self.max_wait:
                    out.append(self._joined(block))
                    block.lines = []
        return out

    def flush(self) -> list[Entry]:
        out = []
        with self.lock:
            for block in self.streams.values():
                if block is not None and block.lines:
                    out.append(self._joined(block))
                    block.lines = []
        return out


@register("multiline")
def build(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block, "multiline", weak=True)
    expression = conf.opt_string("firstline")
    wait_text = conf.opt_string("max_wait_time")
    max_lines = conf.integer("max_lines", MAX_LINES)
    conf.done()
    if expression is None:
        raise StageError("multiline stage config must define `firstline` regular expression")
    regex = compile_regex(expression, "multiline stage first line regex compilation error")
    max_wait = MAX_WAIT
    if wait_text is not None:
        try:
            max_wait = parse_duration(wait_text)
        except ValueError as err:
            raise StageError(f"multiline stage `max_wait_time` parse error: {err}") from None
    if max_lines < 0:  # a uint64 in Promtail
        raise StageError(f"'max_lines' expected a non-negative integer, got {max_lines}")
    return MultilineStage(regex, max_lines, max_wait)
