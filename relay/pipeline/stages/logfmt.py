"""`logfmt`: read `key=value` pairs from the line (or an extracted value) into the extracted map.

`mapping` is extracted name -> logfmt key (empty: the same name). The reading follows go-logfmt: line by
line, a key without `=` gives "", quoted values are unescaped as JSON strings, and a syntax error stops
the reading (pairs read before it stay extracted).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..values import to_string
from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block

# One key/value pair after optional garbage (bytes <= ' '). After an unquoted value, only a space or the end
# may follow; after a quoted one go-logfmt reads on.
PAIR = re.compile(r'[\x00-\x20]*([^\x00-\x20="]+)(?:=(?:"((?:[^"\\]|\\.)*)"|([^\x00-\x20="]*)))?', re.DOTALL)
BLANK = re.compile(r"[\x00-\x20]*\Z")


def pairs(text: str) -> list[tuple[str, str]]:
    """The pairs of a logfmt text, up to the first syntax error."""
    out: list[tuple[str, str]] = []
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        pos, end = 0, len(line)
        while pos < end:
            m = PAIR.match(line, pos)
            if m is None:
                if BLANK.match(line, pos):
                    break
                return out  # '=' or '"' where a key should start
            pos = m.end()
            quoted = m.group(2)
            if quoted is None and pos < end and line[pos] > " ":
                return out  # a '=' or '"' inside a key or an unquoted value
            if quoted is not None:
                if "\\" in quoted:
                    try:
                        quoted = orjson.loads('"' + quoted + '"')
                    except orjson.JSONDecodeError:
                        return out
                out.append((m.group(1), quoted))
            else:
                out.append((m.group(1), m.group(3) or ""))
    return out


class LogfmtStage(Stage):
    kind = "logfmt"

    def __init__(self, inverse: dict[str, str], source: str | None) -> None:
        self.inverse = inverse  # logfmt key -> extracted name
        self.source = source

    def run(self, entries: list[Entry]) -> list[Entry]:
        inverse = self.inverse
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
            for key, value in pairs(text):
                name = inverse.get(key)
                if name is not None:
                    extracted[name] = value
        return entries


@register("logfmt")
def build(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block, "logfmt")
    mapping = conf.string_map("mapping")
    source = conf.opt_string("source")
    conf.done()
    if not mapping:
        raise StageError("logfmt mapping is required")
    if source == "":
        raise StageError("empty source")
    # Two names for one key: Go's map iteration picks one at random; we keep the last.
    inverse = {(key or name): name for name, key in mapping.items()}
    return LogfmtStage(inverse, source)
