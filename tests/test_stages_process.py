"""The Processor with pipeline stages: entries in, regrouped and encoded chunks out."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from relay.config import parse_config
from relay.model import new_stream
from relay.pipeline.process import Outcome, Processor
from relay.pipeline.stages.base import Entry, Stage
from relay.proto import StreamAdapter

NS = 1_000_000_000


def processor(stages: list[Any], incoming_ts: bool = True, limits: dict[str, Any] | None = None) -> Processor:
    # Times from 2024 stay in: this is about what the stages make of entries, not Loki's time window.
    cfg = parse_config({"limits_config": {"reject_old_samples": False, **(limits or {})}, "scrape_configs": [{
        "job_name": "t",
        "loki_push_api": {"server": {"http_listen_port": 0}, "use_incoming_timestamp": incoming_ts},
        "pipeline_stages": stages,
    }]})
    return Processor(cfg.jobs[0], cfg.limits)


def decoded(out: Outcome) -> dict[str, list[tuple[int, str, dict[str, str]]]]:
    """label text -> [(ns, line, metadata)] of every chunk, all tenants."""
    got: dict[str, list[tuple[int, str, dict[str, str]]]] = {}
    for chunks in out.chunks.values():
        for chunk in chunks:
            msg = StreamAdapter.FromString(chunk.data)
            assert chunk.count == len(msg.entries)
            got.setdefault(chunk.labels, []).extend(
                (e.timestamp.seconds * NS + e.timestamp.nanos, e.line, {p.name: p.value for p in e.structuredMetadata})
                for e in msg.entries)
    return got


def json_lines(*docs: dict[str, Any]) -> list[tuple[int, str]]:
    return [(i + 1, orjson.dumps(d).decode()) for i, d in enumerate(docs)]


PIPELINE = [
    {"json": {"expressions": {"level": "level", "ts": "time", "msg": "msg", "rid": "request_id"}}},
    {"labels": {"level": None}},
    {"timestamp": {"source": "ts", "format": "RFC3339Nano"}},
    {"structured_metadata": {"rid": None}},
    {"output": {"source": "msg"}},
]


def test_entries_regroup_by_final_labels_with_metadata_and_times() -> None:
    proc = processor(PIPELINE)
    lines = json_lines(
        {"time": "2024-05-06T07:08:09.5Z", "level": "info", "msg": "a", "request_id": "r1"},
        {"time": "2024-05-06T07:08:09.25Z", "level": "warn", "msg": "b", "request_id": "r2"},
        {"time": "2024-05-06T07:08:10.000000001Z", "level": "info", "msg": "c", "request_id": "r3"},
    )
    out = proc.process([new_stream({"job": "x"}, lines), new_stream({"job": "y"}, lines[:1])], "", time.time_ns())
    t0 = 1714979289 * NS
    assert decoded(out) == {
        '{job="x", level="info"}': [(t0 + NS // 2, "a", {"rid": "r1"}), (t0 + NS + 1, "c", {"rid": "r3"})],
        '{job="x", level="warn"}': [(t0 + NS // 4, "b", {"rid": "r2"})],
        '{job="y", level="info"}': [(t0 + NS // 2, "a", {"rid": "r1"})],
    }
    assert (out.entries, out.received) == (4, 4)


def test_label_changes_never_leak_into_the_next_request() -> None:
    # Entries share the stream's cached label dict; a stage that changed it in place would carry
    # one request's labels (or a demoted label) into the next.
    proc = processor([
        {"json": {"expressions": {"level": "level"}}},
        {"labels": {"level": None}},
        {"structured_metadata": {"pod": None}},
        {"labeldrop": ["drop_me"]},
        {"static_labels": {"env": "prod"}},
        {"tenant": {"label": "team"}},
    ])
    labels = {"job": "x", "pod": "p-1", "drop_me": "1", "team": "a"}
    first = decoded(proc.process([new_stream(labels, json_lines({"level": "info"}))], "", 0))
    second = decoded(proc.process([new_stream(labels, json_lines({"msg": "no level"}))], "", 0))
    assert list(first) == ['{env="prod", job="x", level="info", team="a"}']
    assert list(second) == ['{env="prod", job="x", team="a"}']
    assert first[list(first)[0]][0][2] == second[list(second)[0]][0][2] == {"pod": "p-1"}


class _BadLine(Stage):
    """Gives one entry a line protobuf cannot hold (a lone surrogate)."""

    def run(self, entries: list[Entry]) -> list[Entry]:
        entries[1].line = "bad \ud800"
        return entries


@pytest.mark.parametrize("limits", [None, {"max_line_size": "1KB"}])
def test_an_entry_protobuf_refuses_is_dropped_as_invalid_alone(limits: dict[str, Any] | None) -> None:
    proc = processor([{"static_labels": {"env": "prod"}}], limits=limits)
    assert proc.pipeline is not None
    proc.pipeline.stages.append(_BadLine())
    out = proc.process([new_stream({"job": "x"}, [(1, "a"), (2, "b"), (3, "c" * 2000)])], "", 0)
    kept = [(1, "a", {})] if limits else [(1, "a", {}), (3, "c" * 2000, {})]
    assert decoded(out) == {'{env="prod", job="x"}': kept}
    assert out.dropped["invalid"] == 1
    assert out.dropped["line_too_long"] == (1 if limits else 0)
    assert out.entries == len(kept)


def test_receive_time_without_incoming_timestamps() -> None:
    proc = processor([{"static_labels": {"env": "prod"}}], incoming_ts=False)
    out = proc.process([new_stream({"job": "x"}, [(1, "a"), (2, "b")])], "", 5 * NS)
    assert decoded(out) == {'{env="prod", job="x"}': [(5 * NS, "a", {}), (5 * NS + 1, "b", {})]}
