"""Tests for the stages that reshape lines: pack, decolorize, docker, cri, multiline."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from relay.pipeline.gotime import parse_duration
from relay.pipeline.stages import decolorize as _decolorize  # noqa: F401  (registers)
from relay.pipeline.stages import docker as _docker  # noqa: F401
from relay.pipeline.stages import multiline as _multiline  # noqa: F401
from relay.pipeline.stages import pack as _pack  # noqa: F401
from relay.pipeline.stages.base import KINDS, BuildContext, Entry, StageError

S = 1_000_000_000


def build(kind: str, block: Any):
    return KINDS[kind](block, BuildContext(job="t"))


def entry(line: str, labels: dict[str, str] | None = None, ts: int = 5, **extracted: Any) -> Entry:
    return Entry(labels=dict(labels or {"job": "t"}), line=line, timestamp=ts, extracted=dict(extracted))


# --- pack ---------------------------------------------------------------------------------------


def test_pack_sorted_names_entry_last_labels_removed() -> None:
    stage = build("pack", {"labels": ["pod", "container", "absent"], "ingest_timestamp": False})
    e = entry('say "hi" <b>', {"job": "t", "pod": "p-1", "container": "c"}, pod="p-1", container="c", other="x")
    stage.run([e])
    assert e.line == '{"container":"c","pod":"p-1","_entry":"say \\"hi\\" \\u003cb\\u003e"}'
    assert e.labels == {"job": "t"}
    assert e.timestamp == 5
    assert orjson.loads(e.line) == {"container": "c", "pod": "p-1", "_entry": 'say "hi" <b>'}


def test_pack_without_labels_and_non_string_values() -> None:
    stage = build("pack", {"labels": ["n", "obj"], "ingest_timestamp": False})
    e = entry("x", n=3, obj=None)
    stage.run([e])
    assert e.line == '{"n":"3","_entry":"x"}'


def test_pack_ingest_timestamp_default_true() -> None:
    before = time.time_ns()
    (e,) = build("pack", {"labels": ["a"]}).run([entry("x", ts=1, a="b")])
    assert before <= e.timestamp <= time.time_ns()
    (e,) = build("pack", {"labels": ["a"], "ingest_timestamp": "false"}).run([entry("x", ts=1, a="b")])
    assert e.timestamp == 1


def test_pack_empty_block() -> None:
    (e,) = build("pack", None).run([entry("x")])
    assert e.line == '{"_entry":"x"}'


@pytest.mark.parametrize("block,message", [({"labels": {"a": 1}}, r"'labels\[0\]' expected type 'string', got unconvertible type 'map'"),
                                           ({"ingest_timestamp": "maybe"}, "ingest_timestamp")])
def test_pack_validation(block: Any, message: str) -> None:
    with pytest.raises(StageError, match=message):
        build("pack", block)


# --- decolorize ---------------------------------------------------------------------------------


def test_decolorize() -> None:
    stage = build("decolorize", None)
    a = entry("\x1b[31mERROR\x1b[0m disk \x1b[1;33mfull\x1b[m")
    b = entry("plain line")
    c = entry("\x1b]0;title\x07after")
    stage.run([a, b, c])
    assert (a.line, b.line, c.line) == ("ERROR disk full", "plain line", "after")


# --- docker -------------------------------------------------------------------------------------


def test_docker() -> None:
    stage = build("docker", {})
    line = '{"log":"starting server\\n","stream":"stderr","time":"2024-03-04T05:06:07.123456789Z"}'
    (e,) = stage.run([entry(line)])
    assert e.line == "starting server\n"
    assert e.labels == {"job": "t", "stream": "stderr"}
    assert e.timestamp == 1709528767 * S + 123456789
    assert e.extracted["output"] == "starting server\n"


def test_docker_non_json_line_passes_and_timestamp_is_fudged_after_a_good_one() -> None:
    stage = build("docker", {})
    good = entry('{"log":"a","stream":"stdout","time":"2024-03-04T05:06:07Z"}')
    bad = entry("not json at all", {"job": "t", "stream": "stdout"})
    stage.run([good, bad])
    assert bad.line == "not json at all"
    assert bad.timestamp == good.timestamp + 1


# --- cri ----------------------------------------------------------------------------------------


def test_cri_full_lines() -> None:
    stage = build("cri", {})
    (e,) = stage.run([entry("2024-03-04T05:06:07.5+01:00 stdout F hello world")])
    assert e.line == "hello world"
    assert e.labels == {"job": "t", "stream": "stdout"}
    assert e.timestamp == (1709528767 - 3600) * S + 500_000_000


def test_cri_partial_lines_join_per_stream() -> None:
    stage = build("cri", {})
    out = stage.run([
        entry("2024-03-04T05:06:07Z stdout P part one, "),
        entry("2024-03-04T05:06:07Z stderr F err line"),
        entry("2024-03-04T05:06:08Z stdout P part two, "),
    ])
    assert [e.line for e in out] == ["err line"]
    (joined,) = stage.run([entry("2024-03-04T05:06:09Z stdout F end")])
    assert joined.line == "part one, part two, end"
    assert joined.timestamp == 1709528769 * S  # the final line's timestamp


def test_cri_not_cri_line_passes() -> None:
    (e,) = build("cri", {}).run([entry("just text")])
    assert e.line == "just text" and "stream" not in e.labels


def test_cri_max_partial_lines_gives_up_held_lines() -> None:
    stage = build("cri", {"max_partial_lines": 2})
    out = stage.run([
        entry("2024-03-04T05:06:07Z stdout P a1", {"job": "a"}),
        entry("2024-03-04T05:06:07Z stdout P b1", {"job": "b"}),
        entry("2024-03-04T05:06:07Z stdout P c1", {"job": "c"}),
    ])
    assert sorted(e.line for e in out) == ["a1", "b1"]
    assert [e.line for e in stage.flush()] == ["c1"]


def test_cri_truncate() -> None:
    stage = build("cri", {"max_partial_line_size": 8, "max_partial_line_size_truncate": True})
    out = stage.run([entry("2024-03-04T05:06:07Z stdout P 12345"), entry("2024-03-04T05:06:07Z stdout F 67890")])
    assert [e.line for e in out] == ["12345678"]
    untruncated = build("cri", {"max_partial_line_size": 8})
    out = untruncated.run([entry("2024-03-04T05:06:07Z stdout P 12345"), entry("2024-03-04T05:06:07Z stdout F 67890")])
    assert [e.line for e in out] == ["1234567890"]


@pytest.mark.parametrize("block,message", [({"max_partial_lines": "many"}, "max_partial_lines"),
                                           ({"max_partial_line_size": "big"}, "max_partial_line_size"),
                                           ({"max_partial_line_size_truncate": "perhaps"}, "truncate")])
def test_cri_validation(block: Any, message: str) -> None:
    with pytest.raises(StageError, match=message):
        build("cri", block)


# --- multiline ----------------------------------------------------------------------------------


def test_multiline_joins_blocks_and_passes_lines_before_the_first_block() -> None:
    stage = build("multiline", {"firstline": r"^\[\d{4}-\d\d-\d\d"})
    out = stage.run([
        entry("orphan before any first line", ts=1),
        entry("[2024-01-01] first", ts=2, k="v"),
        entry("  at frame 1", ts=3),
        entry("  at frame 2", ts=4),
        entry("[2024-01-02] second", ts=5),
    ])
    assert [(e.line, e.timestamp) for e in out] == [
        ("orphan before any first line", 1),
        ("[2024-01-01] first\n  at frame 1\n  at frame 2", 2),
    ]
    assert out[1].extracted == {"k": "v"}
    (held,) = stage.flush()
    assert (held.line, held.timestamp) == ("[2024-01-02] second", 5)
    assert stage.flush() == []


def test_multiline_streams_are_separate() -> None:
    stage = build("multiline", {"firstline": "^START"})
    a, b = {"job": "a"}, {"job": "b"}
    out = stage.run([entry("START a", a), entry("START b", b), entry("a cont", a), entry("b cont", b),
                     entry("START a2", a)])
    assert [e.line for e in out] == ["START a\na cont"]
    assert sorted(e.line for e in stage.flush()) == ["START a2", "START b\nb cont"]


def test_multiline_max_lines() -> None:
    stage = build("multiline", {"firstline": "^START", "max_lines": 2})
    out = stage.run([entry("START", ts=1), entry("l1", ts=2), entry("l2", ts=3), entry("l3", ts=4)])
    assert [(e.line, e.timestamp) for e in out] == [("START\nl1", 1), ("l2\nl3", 1)]


def test_multiline_max_wait_time() -> None:
    stage = build("multiline", {"firstline": "^START", "max_wait_time": "250ms"})
    assert stage.max_wait == 0.25
    assert stage.next_deadline() is None
    assert stage.run([entry("START"), entry("more")]) == []
    deadline = stage.next_deadline()
    assert deadline is not None
    assert stage.flush_expired(deadline - 0.1) == []
    (e,) = stage.flush_expired(deadline)
    assert e.line == "START\nmore"
    assert stage.next_deadline() is None and stage.flush() == []
    # a later line joins under the same first entry, as in Promtail
    assert stage.run([entry("late")]) == []
    assert [e.line for e in stage.flush()] == ["late"]


@pytest.mark.parametrize("text,seconds", [("3s", 3.0), ("1m30s", 90.0), ("500ms", 0.5), ("1.5h", 5400.0),
                                          ("0", 0.0), ("-2s", -2.0), ("10us", 1e-5)])
def test_go_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "block,message",
    [({}, "multiline stage config must define `firstline` regular expression"),
     ({"firstline": "("}, "multiline stage first line regex compilation error"),
     ({"firstline": "x", "max_wait_time": "3"}, "multiline stage `max_wait_time` parse error"),
     ({"firstline": "x", "max_wait_time": "soon"}, "multiline stage `max_wait_time` parse error"),
     ({"firstline": "x", "max_lines": -1}, "'max_lines'")],
)
def test_multiline_validation(block: Any, message: str) -> None:
    with pytest.raises(StageError, match=message):
        build("multiline", block)
