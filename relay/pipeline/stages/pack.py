"""`pack`: wrap the line and some extracted values into one JSON object, and drop those labels.

The line becomes `{"<name>":"<value>",...,"_entry":"<line>"}` with the names sorted and `_entry` last,
as Promtail writes it (Loki's `| unpack` reverses it). Each packed name is also removed from the
entry's labels. `ingest_timestamp` (default true) sets the timestamp to the time of packing.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..values import to_string
from .base import BuildContext, Entry, LabelMemo, Stage, drop_labels, register
from .block import Block

ENTRY_KEY = "_entry"


def json_string(text: str) -> str:
    """A JSON string as Go's json-iterator writes it (HTML characters escaped)."""
    out = orjson.dumps(text).decode()
    if "<" in out or ">" in out or "&" in out or "\u2028" in out or "\u2029" in out:
        out = (out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
               .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return out


class PackStage(Stage):
    kind = "pack"

    def __init__(self, names: list[str], ingest_timestamp: bool) -> None:
        self.names = sorted(set(names))
        self.ingest_timestamp = ingest_timestamp

    def run(self, entries: list[Entry]) -> list[Entry]:
        names = self.names
        now = time.time_ns() if self.ingest_timestamp else None
        memo: LabelMemo = {}
        for entry in entries:
            extracted = entry.extracted
            parts = []
            packed = []
            for name in names:
                if name in extracted:
                    text = to_string(extracted[name])
                    if text is None:
                        continue
                    parts.append(json_string(name) + ":" + json_string(text))
                    packed.append(name)
            if packed:
                entry.labels = drop_labels(entry.labels, frozenset(packed), memo)
            parts.append('"_entry":' + json_string(entry.line))
            entry.line = "{" + ",".join(parts) + "}"
            if now is not None:
                entry.timestamp = now
        return entries


@register("pack")
def build(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block, "pack", weak=True)
    names = conf.string_list("labels")
    ingest_timestamp = conf.boolean("ingest_timestamp", True)
    conf.done()
    return PackStage(names, ingest_timestamp)
