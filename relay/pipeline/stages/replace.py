"""`replace`: replace each captured group of an RE2 expression in the line (or an extracted value).

`replace` is a Go template run once per captured group with `.Value` the captured text and the
extracted values by name. Named groups also store their replacement in the extracted map. Unlike
Promtail, which parses the template per entry and silently does nothing when it does not parse, a
template that does not parse is refused when the config is loaded.
"""

from __future__ import annotations

from typing import Any

from ...regexp import span_finder
from ..gotemplate import Template, TemplateError
from ..values import to_string
from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block, compile_regex
from .regex import COMPILE_ERROR
from .template import parse_template, template_data


class ReplaceStage(Stage):
    kind = "replace"

    def __init__(self, regex: Any, source: str | None, template: Template) -> None:
        self.regex = regex
        self.source = source
        self.template = template
        self.names = list(regex.groupindex.items())
        self.find = span_finder(regex)

    def replace(self, text: str, extracted: dict[str, Any]) -> tuple[str, dict[str, str], Any] | None:
        try:
            if self.find(text.encode()) is None:  # the cheap search first: most lines have nothing to replace
                return None
            matches = list(self.regex.finditer(text))
        except UnicodeEncodeError:
            return None
        if not matches:
            return None
        data = template_data(extracted)
        execute = self.template.execute
        out: list[str] = []
        previous = 0
        captured: dict[str, str] = {}
        for match in matches:
            for group in range(1, self.regex.groups + 1):
                start, end = match.span(group)
                if start < 0:
                    continue
                value = text[start:end]
                data["Value"] = value
                replaced = execute(data)
                if previous == 0 or previous <= start:
                    out.append(text[previous:start])
                    out.append(replaced)
                    previous = end
                captured[value] = replaced
        out.append(text[previous:])
        return "".join(out), captured, matches[0]

    def run(self, entries: list[Entry]) -> list[Entry]:
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
            try:
                done = self.replace(text, extracted)
            except TemplateError:
                continue
            if done is None:
                continue
            result, captured, first = done
            if source is None:
                entry.line = result
            else:
                extracted[source] = result
            for name, index in self.names:
                key = first.group(index) or ""
                if key in captured:
                    extracted[name] = captured[key]
        return entries


@register("replace")
def build(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block, "replace")
    expression = conf.string("expression")
    source = conf.opt_string("source")
    text = conf.string("replace")
    conf.done()
    if not expression:
        raise StageError("expression is required")
    if source == "":
        raise StageError("empty source in replace stage")
    return ReplaceStage(compile_regex(expression, COMPILE_ERROR), source, parse_template(text, "replace"))
