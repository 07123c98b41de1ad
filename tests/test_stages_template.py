"""Tests for relay.pipeline.gotemplate and the template and replace stages."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from relay.pipeline.gotemplate import Template, TemplateError, go_float
from relay.pipeline.stages import replace as _replace  # noqa: F401  (registers)
from relay.pipeline.stages import template as _template  # noqa: F401
from relay.pipeline.stages.base import KINDS, BuildContext, Entry, StageError

DATA = {"Value": "Hello World", "Entry": "the line", "app": "api", "level": "WARN", "empty": ""}


@pytest.mark.parametrize(
    "text,expected",
    [
        ("plain", "plain"),
        ("{{ .Value }}", "Hello World"),
        ("{{ .Value | ToUpper }}", "HELLO WORLD"),
        ("{{ ToLower .Value }}", "hello world"),
        ("{{ .app }}-{{ .Entry }}", "api-the line"),
        ("{{ .missing }}", "<no value>"),
        ("{{ .missing | default \"dflt\" }}", "dflt"),
        ("{{ .empty | default \"dflt\" }}", "dflt"),
        ("{{ default \"dflt\" .app }}", "api"),
        ('{{ if eq .level "WARN" }}w{{ else if eq .level "INFO" }}i{{ else }}o{{ end }}', "w"),
        ('{{ if eq .app "x" }}w{{ else if eq .app "api" }}i{{ else }}o{{ end }}', "i"),
        ('{{ if ne .app "api" }}w{{ else }}o{{ end }}', "o"),
        ('{{ if .missing }}y{{ else }}n{{ end }}', "n"),
        ('{{ if and .app .empty }}y{{ else }}n{{ end }}', "n"),
        ('{{ if or .empty .app }}y{{ end }}', "y"),
        ('{{ if not .empty }}y{{ end }}', "y"),
        ("{{ eq .app \"api\" \"web\" }}", "true"),
        ("a  {{- .app -}}  b", "aapib"),
        ("a  {{- .app }}  b", "aapi  b"),
        ("a {{/* a comment */}}b", "a b"),
        ('{{ Replace .Value "o" "0" 1 }}', "Hell0 World"),
        ('{{ Replace .Value "o" "0" -1 }}', "Hell0 W0rld"),
        ('{{ Trim .Value "Hd" }}', "ello Worl"),
        ('{{ TrimLeft .Value "He" }}', "llo World"),
        ('{{ TrimRight .Value "dl" }}', "Hello Wor"),
        ('{{ TrimPrefix .Value "Hello " }}', "World"),
        ('{{ TrimSuffix .Value " World" }}', "Hello"),
        ('{{ TrimSpace "  x  " }}', "x"),
        ('{{ regexReplaceAll "(\\\\w+) (\\\\w+)" .Value "${2}_$1" }}', "World_Hello"),
        ('{{ regexReplaceAll "o" .Value "$$" }}', "Hell$ W$rld"),
        ('{{ regexReplaceAll "(?P<first>\\\\w+)" .Value "<$first>" }}', "<Hello> <World>"),
        ('{{ regexReplaceAllLiteral "o" .Value "$1" }}', "Hell$1 W$1rld"),
        ('{{ .Value | regexReplaceAll "[aeiou]" "*" }}', "*"),  # piped value is the last argument: the repl
        ('{{ contains "World" .Value }} {{ hasPrefix "Hell" .Value }} {{ hasSuffix "x" .Value }}', "true true false"),
        ("{{ `raw }} text` }}", "raw }} text"),
        ('{{ "tab\\there" }}', "tab\there"),
        ('{{ printf "%s=%d" .app 3 }}', "api=3"),
        ("{{ (print .app \"x\") | ToUpper }}", "APIX"),
        ("{{ with .app }}[{{ . }}]{{ end }}{{ with .missing }}no{{ else }}none{{ end }}", "[api]none"),
        ("{{ len .app }}", "3"),
        ("{{ 1.5 }} {{ 1000000.0 }} {{ 42 }} {{ true }}", "1.5 1e+06 42 true"),
    ],
)
def test_template(text: str, expected: str) -> None:
    assert Template(text).execute(DATA) == expected


def test_hash_functions() -> None:
    assert Template('{{ Hash "s" .app }}').execute(DATA) == hashlib.sha3_256(b"sapi").hexdigest()
    assert Template('{{ Sha2Hash "s" .app }}').execute(DATA) == hashlib.sha256(b"sapi").hexdigest()


@pytest.mark.parametrize(
    "text",
    ["{{ .Value", "{{ nosuch .Value }}", "{{ if .a }}x", "{{ end }}", "{{ else }}", "{{ range .x }}{{ end }}",
     "{{ $x := 1 }}", "{{ .a ( }}", "{{ /* open }}", '{{ "unterminated }}', "{{ }}", "{{ .a | }}", "{{ nil }}"],
)
def test_parse_errors(text: str) -> None:
    with pytest.raises(TemplateError):
        Template(text)


@pytest.mark.parametrize(
    "text",
    ["{{ ToUpper .missing }}", "{{ ToUpper 5 }}", '{{ eq .app 5 }}', "{{ .app \"x\" }}", "{{ ToUpper }}",
     '{{ regexReplaceAll "(" .app "x" }}', "{{ .app.field }}"],
)
def test_execution_errors(text: str) -> None:
    with pytest.raises(TemplateError):
        Template(text).execute(DATA)


def test_go_float() -> None:
    assert [go_float(v) for v in (1.0, 0.5, 123456.0, 1e6, 1234567.0, 1e-5, -2.5)] == [
        "1", "0.5", "123456", "1e+06", "1.234567e+06", "1e-05", "-2.5"]


# --- template stage ------------------------------------------------------------------------------


def build(kind: str, block: Any):
    return KINDS[kind](block, BuildContext(job="t"))


def entry(line: str = "the line", **extracted: Any) -> Entry:
    return Entry(labels={"job": "t"}, line=line, timestamp=1, extracted=dict(extracted))


def test_template_stage_sets_source() -> None:
    (e,) = build("template", {"source": "level", "template": "{{ .Value | ToLower }}"}).run([entry(level="WARN")])
    assert e.extracted["level"] == "warn"


def test_template_stage_creates_a_new_key_from_others() -> None:
    stage = build("template", {"source": "new", "template": "{{ .app }}/{{ .code }}/{{ .Entry }}"})
    (e,) = stage.run([entry("L", app="api", code=404, obj=[1])])
    assert e.extracted["new"] == "api/404/L"


def test_template_stage_value_missing_prints_no_value() -> None:
    (e,) = build("template", {"source": "x", "template": "v={{ .Value }}"}).run([entry()])
    assert e.extracted["x"] == "v=<no value>"


def test_template_stage_empty_result_removes_the_key() -> None:
    stage = build("template", {"source": "level", "template": '{{ if eq .Value "debug" }}{{ else }}{{ .Value }}{{ end }}'})
    a, b = entry(level="debug"), entry(level="info")
    stage.run([a, b])
    assert "level" not in a.extracted
    assert b.extracted["level"] == "info"


def test_template_stage_execution_error_leaves_entry() -> None:
    (e,) = build("template", {"source": "x", "template": "{{ ToUpper .nope }}"}).run([entry(x="keep")])
    assert e.extracted == {"x": "keep"}


@pytest.mark.parametrize(
    "block,message",
    [({}, "template source value is required"), ({"template": "x"}, "template source value is required"),
     ({"source": "a", "template": "{{ bad }}"}, 'function "bad" not defined'),
     ({"source": "a", "template": "{{ if .x }}"}, "expected {{end}}")],
)
def test_template_stage_validation(block: Any, message: str) -> None:
    with pytest.raises(StageError, match=message):
        build("template", block)


# --- replace stage ------------------------------------------------------------------------------


def test_replace_masks_captured_groups_in_the_line() -> None:
    stage = build("replace", {"expression": r"password=(\S+)", "replace": "****"})
    (e,) = stage.run([entry("user=bob password=hunter2 host=x password=again")])
    assert e.line == "user=bob password=**** host=x password=****"


def test_replace_template_sees_value_and_extracted() -> None:
    stage = build("replace", {"expression": r"level=(?P<level>\w+)", "replace": "{{ .Value | ToUpper }}-{{ .app }}"})
    (e,) = stage.run([entry("ts=1 level=warn msg=x", app="api")])
    assert e.line == "ts=1 level=WARN-api msg=x"
    assert e.extracted["level"] == "WARN-api"


def test_replace_empty_template_deletes_groups() -> None:
    stage = build("replace", {"expression": r"(\d{3}-\d{2}-\d{4})"})
    (e,) = stage.run([entry("ssn 123-45-6789 ok")])
    assert e.line == "ssn  ok"


def test_replace_source_writes_back_to_extracted_only() -> None:
    stage = build("replace", {"expression": r"^(\w+)@", "source": "email", "replace": "{{ Sha2Hash \"salt\" .Value }}"})
    (e,) = stage.run([entry("unchanged", email="jane@example.com")])
    assert e.line == "unchanged"
    assert e.extracted["email"] == hashlib.sha256(b"saltjane").hexdigest() + "@example.com"


def test_replace_no_match_or_no_source() -> None:
    stage = build("replace", {"expression": r"(x+)", "source": "s", "replace": "y"})
    a, b = entry(s="abc"), entry()
    stage.run([a, b])
    assert a.extracted == {"s": "abc"} and b.extracted == {}


def test_replace_without_groups_changes_nothing() -> None:
    (e,) = build("replace", {"expression": r"\d+", "replace": "N"}).run([entry("a 12 b")])
    assert e.line == "a 12 b"


def test_replace_several_groups_per_match() -> None:
    stage = build("replace", {"expression": r"(\w+)=(\w+)", "replace": "<{{ .Value }}>"})
    (e,) = stage.run([entry("a=1 b=2")])
    assert e.line == "<a>=<1> <b>=<2>"


@pytest.mark.parametrize(
    "block,message",
    [({}, "expression is required"), ({"expression": "(a)", "source": ""}, "empty source in replace stage"),
     ({"expression": "(a"}, "could not compile regular expression"),
     ({"expression": "(a)", "replace": "{{ nope }}"}, "not defined")],
)
def test_replace_validation(block: Any, message: str) -> None:
    with pytest.raises(StageError, match=message):
        build("replace", block)
