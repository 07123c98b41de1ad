"""Unit tests for the extracting stages: json, logfmt, regex, output (and replace when present)."""

from __future__ import annotations

from typing import Any

import pytest

from relay.pipeline.stages import json as _json  # noqa: F401  (registers)
from relay.pipeline.stages import logfmt as _logfmt  # noqa: F401
from relay.pipeline.stages import output as _output  # noqa: F401
from relay.pipeline.stages import regex as _regex  # noqa: F401
from relay.pipeline.stages.base import KINDS, BuildContext, Entry, StageError
from relay.pipeline.values import to_string


def build(kind: str, block: Any):
    return KINDS[kind](block, BuildContext(job="t"))


def entry(line: str, **extracted: Any) -> Entry:
    return Entry(labels={"job": "t"}, line=line, timestamp=1, extracted=dict(extracted))


def run(kind: str, block: Any, *entries: Entry) -> list[Entry]:
    return build(kind, block).run(list(entries))


# --- to_string (Promtail's getString) -----------------------------------------------------------


@pytest.mark.parametrize(
    "value,text",
    [("a", "a"), (True, "true"), (False, "false"), (3, "3"), (1.0, "1"), (1.5, "1.5"), (-0.25, "-0.25"),
     (1e21, "1000000000000000000000"), (1.5e-7, "0.00000015"), (None, None), ([1], None), ({"a": 1}, None)],
)
def test_to_string(value: Any, text: str | None) -> None:
    assert to_string(value) == text


# --- json ---------------------------------------------------------------------------------------

LINE = (
    '{"time":"2024-05-06T07:08:09.123Z","level":"warn","count":42,"ratio":0.5,"ok":true,"none":null,'
    '"nested":{"user":{"id":"u-7"},"tags":["a","b"]},"dotted.key":"dv","html":{"x":"<b>&"}}'
)


def test_json_scalars_keep_their_type_and_missing_paths_store_null() -> None:
    (e,) = run("json", {"expressions": {"level": "", "count": "count", "ratio": "ratio", "ok": "ok",
                                        "none": "none", "missing": "no_such_key"}}, entry(LINE))
    assert e.extracted == {"level": "warn", "count": 42, "ratio": 0.5, "ok": True, "none": None, "missing": None}


def test_json_null_expression_uses_the_name() -> None:
    (e,) = run("json", {"expressions": {"level": None}}, entry(LINE))
    assert e.extracted == {"level": "warn"}


def test_json_nested_paths_quoted_keys_and_functions() -> None:
    (e,) = run("json", {"expressions": {
        "user": "nested.user.id", "first_tag": "nested.tags[0]", "dotted": '"dotted.key"',
        "ntags": "length(nested.tags)", "deep_missing": "nested.nope.id", "through_scalar": "level.x",
    }}, entry(LINE))
    assert e.extracted["user"] == "u-7"
    assert e.extracted["first_tag"] == "a"
    assert e.extracted["dotted"] == "dv"
    assert e.extracted["ntags"] == 2
    assert e.extracted["deep_missing"] is None
    assert e.extracted["through_scalar"] is None


def test_json_objects_and_arrays_are_stored_as_json_text() -> None:
    (e,) = run("json", {"expressions": {"tags": "nested.tags", "user": "nested.user", "html": "html"}}, entry(LINE))
    assert e.extracted["tags"] == '["a","b"]'
    assert e.extracted["user"] == '{"id":"u-7"}'
    # Go's encoder escapes HTML characters
    assert e.extracted["html"] == '{"x":"\\u003cb\\u003e\\u0026"}'


def test_json_line_is_not_changed() -> None:
    (e,) = run("json", {"expressions": {"level": ""}}, entry(LINE))
    assert e.line == LINE


def test_json_source_reads_an_extracted_value() -> None:
    stage = build("json", {"expressions": {"id": "user.id"}, "source": "payload"})
    a = entry("not json", payload='{"user":{"id":"x1"}}')
    b = entry("not json")  # no source: left alone
    c = entry("x", payload=5)  # a number is not an object: malformed
    out = stage.run([a, b, c])
    assert out == [a, b, c]
    assert a.extracted["id"] == "x1"
    assert "id" not in b.extracted and "id" not in c.extracted


def test_json_source_that_is_an_object_text_from_a_first_json_stage() -> None:
    first = build("json", {"expressions": {"nested": ""}})
    second = build("json", {"expressions": {"user": "user.id"}, "source": "nested"})
    (e,) = second.run(first.run([entry(LINE)]))
    assert e.extracted["user"] == "u-7"


@pytest.mark.parametrize("line", ["not json", "[1,2]", '"str"', "42", '{"a":', ""])
def test_json_malformed_kept_by_default_dropped_with_drop_malformed(line: str) -> None:
    kept = run("json", {"expressions": {"a": ""}}, entry(line))
    assert len(kept) == 1 and kept[0].extracted == {}
    assert run("json", {"expressions": {"a": ""}, "drop_malformed": True}, entry(line)) == []


def test_json_drop_malformed_keeps_good_lines_in_order() -> None:
    good1, bad, good2 = entry('{"a":1}'), entry("oops"), entry('{"a":2}')
    out = run("json", {"expressions": {"a": ""}, "drop_malformed": True}, good1, bad, good2)
    assert out == [good1, good2]
    assert [e.extracted["a"] for e in out] == [1, 2]


def test_json_type_error_in_expression_skips_that_name_only() -> None:
    (e,) = run("json", {"expressions": {"bad": "length(count)", "level": ""}}, entry(LINE))
    assert "bad" not in e.extracted
    assert e.extracted["level"] == "warn"


def test_json_big_integer_is_a_float_like_go() -> None:
    (e,) = run("json", {"expressions": {"n": ""}}, entry('{"n": 123456789012345678901234567890}'))
    assert isinstance(e.extracted["n"], float)


@pytest.mark.parametrize(
    "block,message",
    [
        ({}, "JMES expression is required"),
        (None, "JMES expression is required"),
        ({"expressions": {}}, "JMES expression is required"),
        ({"expressions": {"a": ""}, "source": ""}, "empty source"),
        ({"expressions": {"a": "a[?"}}, "could not compile JMES expression"),
        ({"expressions": ["a"]}, "'expressions' expected a map"),
        ({"expressions": {"a": 5}}, "'expressions[a]' expected type 'string'"),
        ({"expressions": {"a": ""}, "drop_malformed": "yes"}, "'drop_malformed' expected type 'bool'"),
        ({"expressions": {"a": ""}, "source": 3}, "'source' expected type 'string'"),
        ("text", "expected a map"),
    ],
)
def test_json_validation(block: Any, message: str) -> None:
    with pytest.raises(StageError, match=message.replace("[", r"\[").replace("?", r"\?")):
        build("json", block)


# --- output -------------------------------------------------------------------------------------


def test_output_replaces_line_with_string_number_or_bool() -> None:
    stage = build("output", {"source": "msg"})
    a, b, c = entry("orig", msg="hello"), entry("orig", msg=2.0), entry("orig", msg=False)
    stage.run([a, b, c])
    assert (a.line, b.line, c.line) == ("hello", "2", "false")


def test_output_leaves_line_when_missing_or_null() -> None:
    stage = build("output", {"source": "msg"})
    a, b = entry("orig"), entry("orig", msg=None)
    assert stage.run([a, b]) == [a, b]
    assert a.line == "orig" and b.line == "orig"


def test_output_after_json() -> None:
    (e,) = build("output", {"source": "user"}).run(run("json", {"expressions": {"user": "nested.user"}}, entry(LINE)))
    assert e.line == '{"id":"u-7"}'


@pytest.mark.parametrize("block", [{}, None, {"source": ""}])
def test_output_validation(block: Any) -> None:
    with pytest.raises(StageError, match="output source value is required if output is specified"):
        build("output", block)


# --- regex --------------------------------------------------------------------------------------

ACCESS = '11.22.33.44 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'


def test_regex_named_groups_extract_unnamed_ignored() -> None:
    expr = (r'^(?P<ip>\S+) (?:\S+) (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) (\S+)" '
            r'(?P<status>\d+) (?P<size>\d+)$')
    (e,) = run("regex", {"expression": expr}, entry(ACCESS))
    assert e.extracted == {"ip": "11.22.33.44", "user": "frank", "ts": "10/Oct/2000:13:55:36 -0700",
                           "method": "GET", "path": "/apache_pb.gif", "status": "200", "size": "2326"}
    assert e.line == ACCESS


def test_regex_search_is_unanchored_and_nonparticipating_group_is_empty() -> None:
    (e,) = run("regex", {"expression": r"status=(?P<status>\d+)(?: user=(?P<user>\w+))?"}, entry("x status=503 y"))
    assert e.extracted == {"status": "503", "user": ""}


def test_regex_no_match_changes_nothing() -> None:
    e = entry("nothing here", keep="me")
    assert run("regex", {"expression": r"(?P<n>\d+)"}, e) == [e]
    assert e.extracted == {"keep": "me"}


def test_regex_source_number_and_missing() -> None:
    stage = build("regex", {"expression": r"^(?P<major>\d+)\.(?P<minor>\d+)", "source": "ver"})
    a, b, c = entry("l", ver=1.25), entry("l"), entry("l", ver=None)
    stage.run([a, b, c])
    assert a.extracted["major"] == "1" and a.extracted["minor"] == "25"
    assert "major" not in b.extracted and "major" not in c.extracted


def test_regex_is_re2() -> None:
    # Backreferences are not RE2; Promtail (Go regexp) refuses them too.
    with pytest.raises(StageError, match="could not compile regular expression"):
        build("regex", {"expression": r"(?P<a>x)\1"})


def test_regex_non_ascii_text() -> None:
    (e,) = run("regex", {"expression": r"(?P<who>\pL+) sagt (?P<what>.+)$"}, entry("Zoë sagt «grüß dich» 👋"))
    assert e.extracted == {"who": "Zoë", "what": "«grüß dich» 👋"}


def test_regex_lone_surrogate_line_is_left_alone() -> None:
    e = entry("bad \ud800 line")
    assert run("regex", {"expression": r"(?P<w>bad)"}, e) == [e]
    assert e.extracted == {}


@pytest.mark.parametrize(
    "block,message",
    [({}, "expression is required"), ({"expression": ""}, "expression is required"),
     ({"expression": "(?P<a>x)", "source": ""}, "empty source"),
     ({"expression": "(?P<a>x"}, "could not compile regular expression"),
     ({"expression": 5}, "'expression' expected type 'string'")],
)
def test_regex_validation(block: Any, message: str) -> None:
    with pytest.raises(StageError, match=message):
        build("regex", block)


# --- logfmt -------------------------------------------------------------------------------------


def test_logfmt_mapping_and_renaming() -> None:
    line = 'time=2024-01-02T03:04:05Z level=error msg="disk full, retrying" app=db retries=3 flag'
    (e,) = run("logfmt", {"mapping": {"lvl": "level", "msg": "", "app": None, "flag": "", "n": "retries"}},
               entry(line))
    assert e.extracted == {"lvl": "error", "msg": "disk full, retrying", "app": "db", "flag": "", "n": "3"}


def test_logfmt_escapes_and_empty_values() -> None:
    (e,) = run("logfmt", {"mapping": {"a": "", "b": "", "c": ""}}, entry(r'a="say \"hi\"\n" b= c=""'))
    assert e.extracted == {"a": 'say "hi"\n', "b": "", "c": ""}


def test_logfmt_stops_at_syntax_error_keeping_earlier_pairs() -> None:
    (e,) = run("logfmt", {"mapping": {"a": "", "b": "", "c": ""}}, entry('a=1 b=x"y c=3'))
    assert e.extracted == {"a": "1"}


def test_logfmt_reads_every_line_of_a_multiline_text() -> None:
    (e,) = run("logfmt", {"mapping": {"a": "", "b": ""}}, entry("a=1\r\nb=2"))
    assert e.extracted == {"a": "1", "b": "2"}


def test_logfmt_source() -> None:
    stage = build("logfmt", {"mapping": {"user": ""}, "source": "extra"})
    a, b = entry("user=line", extra="user=src other=1"), entry("user=line")
    stage.run([a, b])
    assert a.extracted["user"] == "src"
    assert "user" not in b.extracted


@pytest.mark.parametrize(
    "block,message",
    [({}, "logfmt mapping is required"), ({"mapping": {}}, "logfmt mapping is required"),
     ({"mapping": {"a": ""}, "source": ""}, "empty source"),
     ({"mapping": "a"}, "'mapping' expected a map")],
)
def test_logfmt_validation(block: Any, message: str) -> None:
    with pytest.raises(StageError, match=message):
        build("logfmt", block)
