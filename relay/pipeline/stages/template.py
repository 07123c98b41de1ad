"""`template`: set an extracted value from a Go text/template.

The template sees every extracted value that converts to a string under its own name, `.Value` for
`source`'s current value and `.Entry` for the line. An empty result removes `source`; an execution
error leaves everything as it was.
"""

from __future__ import annotations

from typing import Any

from ..gotemplate import Template, TemplateError
from ..values import to_string
from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block


def template_data(extracted: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in extracted.items():
        text = value if type(value) is str else to_string(value)
        if text is not None:
            data[key] = text
    return data


def parse_template(text: str, key: str) -> Template:
    try:
        return Template(text)
    except TemplateError as err:
        raise StageError(f"{key}: template: pipeline_template: {err}") from None


class TemplateStage(Stage):
    kind = "template"

    def __init__(self, source: str, template: Template) -> None:
        self.source = source
        self.template = template

    def run(self, entries: list[Entry]) -> list[Entry]:
        source = self.source
        execute = self.template.execute
        for entry in entries:
            extracted = entry.extracted
            data = template_data(extracted)
            if source in data:
                data["Value"] = data[source]
            data["Entry"] = entry.line
            try:
                result = execute(data)
            except TemplateError:
                continue
            if result:
                extracted[source] = result
            else:
                extracted.pop(source, None)
        return entries


@register("template")
def build(block: Any, ctx: BuildContext) -> Stage:
    conf = Block(block, "template")
    source = conf.string("source")
    text = conf.string("template")
    conf.done()
    if not source:
        raise StageError("template source value is required")
    return TemplateStage(source, parse_template(text, "template"))
