"""`docker` and `cri`: Promtail's composite stages for container runtime log formats.

`docker` reads Docker's json-file line (`log`, `stream`, `time`): label `stream`, timestamp from `time`
(RFC3339Nano, fudged on failure), line from `log`. `cri` reads `<time> <stream> <flags> <content>`
the same way and joins partial lines (flag `P`) of a stream until its final line; it holds at most
`max_partial_lines` streams' partial lines (when full, all of them are given up as they are) and,
with `max_partial_line_size_truncate`, cuts a joined line to `max_partial_line_size` bytes.
"""

from __future__ import annotations

import threading
from typing import Any

from ..values import to_string
from .base import BuildContext, Entry, LabelMemo, Stage, StageError, register, set_labels
from .block import Block, compile_regex
from .json import JSONStage, compile_expression
from .output import OutputStage
from .regex import COMPILE_ERROR, RegexStage
from .timestamp import TimestampStage, compile_format

CRI_LINE = r"^(?s)(?P<time>\S+?) (?P<stream>stdout|stderr) (?P<flags>\S+?) (?P<content>.*)$"
MAX_PARTIAL_LINES = 100


def set_stream_label(entries: list[Entry]) -> None:
    """Promtail's `labels: {stream:}` step: the extracted `stream`, when it is a string-able value."""
    memo: LabelMemo = {}
    for entry in entries:
        if "stream" in entry.extracted:
            text = to_string(entry.extracted["stream"])
            if text is not None:
                entry.labels = set_labels(entry.labels, (("stream", text),), memo)


class DockerStage(Stage):
    kind = "docker"

    def __init__(self) -> None:
        names = {"output": "log", "stream": "stream", "timestamp": "time"}
        self.json = JSONStage([(n, compile_expression(e)) for n, e in names.items()], None, False)
        self.timestamp = TimestampStage("timestamp", [compile_format("RFC3339Nano", None)], fudge=True)
        self.output = OutputStage("output")

    def run(self, entries: list[Entry]) -> list[Entry]:
        entries = self.json.run(entries)
        set_stream_label(entries)
        return self.output.run(self.timestamp.run(entries))


class CRIStage(Stage):
    kind = "cri"

    def __init__(self, max_partial_lines: int, max_line_size: int, truncate: bool) -> None:
        self.regex = RegexStage(compile_regex(CRI_LINE, COMPILE_ERROR), None)
        self.timestamp = TimestampStage("time", [compile_format("RFC3339Nano", None)], fudge=True)
        self.output = OutputStage("content")
        self.max_partial_lines = max_partial_lines
        self.max_line_size = max_line_size
        self.truncate = truncate
        self.partial: dict[frozenset[tuple[str, str]], Entry] = {}
        self.lock = threading.Lock()

    def _cut(self, entry: Entry) -> None:
        if self.truncate:
            raw = entry.line.encode("utf-8", "surrogatepass")
            if len(raw) > self.max_line_size:
                # Go cuts bytes; a character split in two is dropped rather than sent as invalid UTF-8.
                entry.line = raw[: self.max_line_size].decode("utf-8", "ignore")

    def run(self, entries: list[Entry]) -> list[Entry]:
        entries = self.regex.run(entries)
        set_stream_label(entries)
        entries = self.output.run(self.timestamp.run(entries))
        out: list[Entry] = []
        with self.lock:
            partial = self.partial
            for entry in entries:
                key = frozenset(entry.labels.items())
                if entry.extracted.get("flags") == "P":
                    if len(partial) >= self.max_partial_lines:
                        out.extend(partial.values())  # too many streams held: give them all up as they are
                        partial.clear()
                        self._cut(entry)
                        partial[key] = entry
                        continue
                    previous = partial.get(key)
                    if previous is not None:
                        entry.line = previous.line + entry.line
                    self._cut(entry)
                    partial[key] = entry
                    continue
                previous = partial.pop(key, None)
                if previous is not None:
                    entry.line = previous.line + entry.line
                    self._cut(entry)
                out.append(entry)
        return out

    def flush(self) -> list[Entry]:
        """Partial lines still held (Promtail loses them at shutdown; we send them as they are)."""
        with self.lock:
            held = list(self.partial.values())
            self.partial.clear()
        return held


def byte_size(conf: Block, key: str) -> int:
    value = conf.raw(key)
    if value is None:
        return 0
    if isinstance(value, bool):
        raise StageError(f"'{key}' expected a size in bytes, got {value!r}")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise StageError(f"'{key}' expected a size in bytes, got {value!r}")


@register("docker")
def build_docker(block: Any, ctx: BuildContext) -> Stage:
    Block(block, "docker").done()  # the docker stage has no settings
    return DockerStage()


@register("cri")
def build_cri(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block, "cri", weak=True)
    max_lines = conf.integer("max_partial_lines") or MAX_PARTIAL_LINES
    max_size = byte_size(conf, "max_partial_line_size")
    truncate = conf.boolean("max_partial_line_size_truncate")
    conf.done()
    return CRIStage(max_lines, max_size, truncate)
