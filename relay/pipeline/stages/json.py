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

from ..values import to_string
from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block

SCALARS = frozenset((str, int, float, bool, type(None)))


class FieldGetter:
    """A JMESPath expression that is one field name: `doc.get(key)`, and the key for batch lookups."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, doc: dict[str, Any]) -> Any:
        return doc.get(self.key)


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
        return FieldGetter(keys[0])

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
        # (name, key) when every expression is a field name, the usual config: dict lookups inline.
        self.fields: list[tuple[str, str]] | None = None
        if all(type(get) is FieldGetter for _, get in expressions):
            self.fields = [(name, get.key) for name, get in expressions]  # type: ignore[attr-defined]

    def run(self, entries: list[Entry]) -> list[Entry]:
        if self.fields is not None and self.source is None:
            return self._run_fields(entries, self.fields)
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

    def _run_fields(self, entries: list[Entry], fields: list[tuple[str, str]]) -> list[Entry]:
        """`run` for field-name expressions on the line."""
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        scalars = SCALARS
        keep_malformed = not self.drop_malformed
        out: list[Entry] = []
        append = out.append
        for entry in entries:
            try:
                doc = loads(entry.line)
            except decode_error:
                doc = None
            if doc.__class__ is not dict:
                if keep_malformed:
                    append(entry)
                continue
            extracted = entry.extracted
            for name, key in fields:
                value = doc.get(key)
                if value.__class__ not in scalars:
                    value = to_json_text(value)
                extracted[name] = value
            append(entry)
        return out


@register("json")
def build(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block, "json")
    expressions = conf.string_map("expressions")
    source = conf.opt_string("source")
    drop_malformed = conf.boolean("drop_malformed")
    conf.done()
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
