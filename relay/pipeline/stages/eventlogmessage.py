"""`eventlogmessage`: split a Windows event log message (`Key: value` lines, CRLF separated) into extracted values.

Keys that are not valid label names are sanitized (every invalid character becomes `_`) or, with
`drop_invalid_labels`, skipped. A key already extracted gets `_extracted` appended unless
`overwrite_existing`. A `source` value that is not a string (e.g. an object) drops the entry, as in Promtail.
"""

from __future__ import annotations

import re
from typing import Any

from ..values import to_string
from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def sanitize_label_name(name: str) -> str:
    if not name:
        return "_"
    fixed = _INVALID.sub("_", name)
    return "_" + fixed[1:] if fixed[0].isdigit() else fixed


def _valid_value(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


class EventLogMessageStage(Stage):
    kind = "eventlogmessage"

    def __init__(self, source: str, drop_invalid: bool, overwrite: bool) -> None:
        self.source = source
        self.drop_invalid = drop_invalid
        self.overwrite = overwrite

    def run(self, entries: list[Entry]) -> list[Entry]:
        out = []
        for entry in entries:
            extracted = entry.extracted
            if self.source not in extracted:
                out.append(entry)
                continue
            text = to_string(extracted[self.source])
            if text is None:
                continue  # Promtail drops the entry
            for line in text.split("\r\n"):
                key, sep, value = line.partition(":")
                if not sep:
                    continue
                if not LABEL_NAME.match(key):
                    if self.drop_invalid:
                        continue
                    key = sanitize_label_name(key)
                if key in extracted and not self.overwrite:
                    key += "_extracted"
                value = value.strip()
                if _valid_value(value):
                    extracted[key] = value
            out.append(entry)
        return out


@register("eventlogmessage")
def build(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block, "eventlogmessage")
    source = conf.opt_string("source")
    drop_invalid = conf.boolean("drop_invalid_labels")
    overwrite = conf.boolean("overwrite_existing")
    conf.done()
    if source is not None and not LABEL_NAME.match(source):
        raise StageError(f"invalid label name: {source}")
    return EventLogMessageStage(source if source is not None else "message", drop_invalid, overwrite)
