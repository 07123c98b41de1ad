"""`json`: parse the line (or an extracted value) as a JSON object and extract values with JMESPath.

As in Promtail, strings, numbers, booleans and null are stored as they are (a missing path stores null),
objects and arrays are stored as their JSON text. Plain paths (`a`, `a.b`, `"x.y"`) skip the JMESPath
interpreter; anything else runs through the `jmespath` package, compiled once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jmespath
import orjson
from jmespath.exceptions import JMESPathError

from ..values import Block, to_string
from .base import BuildContext, Entry, Stage, StageError, register

SCALARS = (str, int, float, bool, type(None))


def _plain_path(node: dict[str, Any]) -> list[str] | None:
    """The keys of a path made only of field names, or None."""
    if node["type"] == "field":
        return [node["value"]]
    if node["type"] == "subexpression":
        keys: list[str] = []
        for child in node["children"]:
            part = _plain_path(child)
            if part is None:
                return None
            keys.extend(part)
        return keys
    return None


def compile_expression(expression: str) -> Callable[[dict[str, Any]], Any]:
    parsed = jmespath.compile(expression)
    keys = _plain_path(parsed.parsed)
    if keys is None:
        search: Callable[[dict[str, Any]], Any] = parsed.search  # jmespath is untyped
        return search
    if len(keys) == 1:
        (key,) = keys
        return lambda doc: doc.get(key)

    def walk(doc: Any) -> Any:
        for key in keys:
            if type(doc) is not dict:
                return None
            doc = doc.get(key)
        return doc

    return walk


def to_json_text(value: Any) -> str:
    # Go's encoder (json-iterator, default config) escapes <, > and & for HTML.
    text = orjson.dumps(value).decode()
    if "<" in text or ">" in text or "&" in text:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text


class JSONStage(Stage):
    kind = "json"

    def __init__(self, expressions: list[tuple[str, Callable[[dict[str, Any]], Any]]], source: str | None,
                 drop_malformed: bool) -> None:
        self.expressions = expressions
        self.source = source
        self.drop_malformed = drop_malformed

    def run(self, entries: list[Entry]) -> list[Entry]:
        expressions = self.expressions
        source = self.source
        drop_malformed = self.drop_malformed
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        out = []
        for entry in entries:
            extracted = entry.extracted
            text: str | None
            if source is None:
                text = entry.line
            else:
                if source not in extracted:
                    out.append(entry)
                    continue
                text = to_string(extracted[source])
                if text is None:
                    out.append(entry)
                    continue
            try:
                doc = loads(text)
            except decode_error:
                doc = None
            if type(doc) is not dict:
                if not drop_malformed:
                    out.append(entry)
                continue
            for name, get in expressions:
                try:
                    value = get(doc)
                except JMESPathError:
                    continue
                if type(value) in SCALARS:
                    extracted[name] = value
                else:
                    extracted[name] = to_json_text(value)
            out.append(entry)
        return out

    def process(self, entry: Entry) -> bool:
        return bool(self.run([entry]))


@register("json")
def build(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block)
    expressions = conf.string_map("expressions")
    source = conf.opt_string("source")
    drop_malformed = conf.boolean("drop_malformed")
    if not expressions:
        raise StageError("JMES expression is required")
    if source == "":
        raise StageError("empty source")
    compiled = []
    for name, expression in expressions.items():
        try:
            compiled.append((name, compile_expression(expression or name)))
        except JMESPathError as err:
            raise StageError(f"could not compile JMES expression: {err}") from None
    return JSONStage(compiled, source, drop_malformed)
