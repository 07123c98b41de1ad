"""Issue 10: the pipeline engine and the label, drop, match, tenant, limit, sampling and metrics stages.

Cases follow Promtail 3.4.5's documentation and what its own tests state; payloads are ours.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client import generate_latest

from relay.config import ConfigError
from relay.metrics import REGISTRY
from relay.model import TENANT_LABEL
from relay.pipeline import selector
from relay.pipeline.gotime import parse_duration
from relay.pipeline.pipeline import Pipeline, build
from relay.pipeline.stages.base import MODULES, Entry
from relay.pipeline.stages.drop import parse_bytes
from relay.pipeline.values import to_float, to_string


def entry(line: str = "line", labels: dict[str, str] | None = None, ts: int | None = None, **extracted: Any) -> Entry:
    labels = dict(labels or {})
    return Entry(labels, line, time.time_ns() if ts is None else ts, {**labels, **extracted}, {})


def pipe(*stages: dict[str, Any]) -> Pipeline:
    p = build(list(stages), "job")
    assert p is not None
    return p


def run(p: Pipeline, *entries: Entry) -> list[Entry]:
    return p.run(list(entries))


# ---- conversions --------------------------------------------------------------------------------

def test_to_string_is_go_getstring() -> None:
    assert to_string("x") == "x"
    assert to_string(True) == "true" and to_string(False) == "false"
    assert to_string(42) == "42"
    assert to_string(1.5) == "1.5" and to_string(2.0) == "2" and to_string(1e21) == "1000000000000000000000"
    assert to_string({"a": 1}) is None and to_string([1]) is None and to_string(None) is None


def test_to_float_reads_numbers_and_durations() -> None:
    assert to_float("1.5") == 1.5 and to_float(3) == 3.0 and to_float(True) == 1.0
    assert to_float("250ms") == 0.25 and to_float("1m30s") == 90.0
    assert to_float("fast") is None and to_float({"a": 1}) is None


def test_go_duration_and_byte_sizes() -> None:
    assert parse_duration("24h") == 86400 and parse_duration("1.5s") == 1.5 and parse_duration("0") == 0
    for bad in ("", "5", "1d", "s", "1x"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_bytes("512") == 512 and parse_bytes("1KB") == 1024 and parse_bytes("4mb") == 4 << 20
    assert parse_bytes("2K") == 2048
    for bad in ("1.5KB", "lots", "1XB"):
        with pytest.raises(ValueError):
            parse_bytes(bad)


# ---- labels, structured metadata, label sets ------------------------------------------------------

def test_labels_from_extracted_with_empty_source_meaning_same_name() -> None:
    p = pipe({"labels": {"level": None, "svc": "app", "missing": "", "obj": "nested", "n": "count"}})
    (e,) = run(p, entry(labels={"job": "x"}, level="warn", app="api", nested={"a": 1}, count=3))
    assert e.labels == {"job": "x", "level": "warn", "svc": "api", "n": "3"}


def test_labels_can_overwrite_and_see_initial_labels() -> None:
    # The extracted map starts with the entry's labels (Promtail's pipeline does the same).
    p = pipe({"labels": {"copy": "job"}})
    (e,) = run(p, entry(labels={"job": "x"}))
    assert e.labels == {"job": "x", "copy": "x"}


def test_one_label_from_values_of_every_kind_in_one_batch() -> None:
    p = pipe({"labels": {"v": None}})
    shared = {"job": "x"}
    values: list[Any] = ["warn", 1, True, 1.5, {"a": 1}, None, "warn", "1", "true"]
    entries = [Entry(shared, "l", 1, {**shared, "v": v}, {}) for v in values] + [Entry(shared, "l", 1, dict(shared), {})]
    out = run(p, *entries)
    assert [e.labels.get("v") for e in out] == ["warn", "1", "true", "1.5", None, None, "warn", "1", "true", None]
    assert out[0].labels is out[6].labels  # equal changes share one new label set
    assert shared == {"job": "x"}


def test_structured_metadata_from_extracted_and_from_labels() -> None:
    p = pipe({"structured_metadata": {"trace_id": None, "pod": None}})
    (e,) = run(p, Entry({"job": "x", "pod": "p-1"}, "l", 1, {"trace_id": "abc"}, {}))
    assert e.metadata == {"trace_id": "abc", "pod": "p-1"}
    assert e.labels == {"job": "x"}  # a label named as a source is moved, not copied


def test_labelallow_and_labeldrop() -> None:
    (e,) = run(pipe({"labelallow": ["job", "app"]}), entry(labels={"job": "j", "app": "a", "pod": "p", "ns": "n"}))
    assert e.labels == {"job": "j", "app": "a"}
    (e,) = run(pipe({"labeldrop": ["pod", "absent"]}), entry(labels={"job": "j", "pod": "p"}))
    assert e.labels == {"job": "j"}


def test_static_labels_set_values_and_skip_empty() -> None:
    (e,) = run(pipe({"static_labels": {"env": "prod", "job": "override", "blank": "", "num": 5}}), entry(labels={"job": "j"}))
    assert e.labels == {"job": "override", "env": "prod", "num": "5"}


# ---- tenant ----------------------------------------------------------------------------------------

def test_tenant_from_value_label_and_source() -> None:
    (e,) = run(pipe({"tenant": {"value": "team-a"}}), entry())
    assert e.labels[TENANT_LABEL] == "team-a"
    (e, f) = run(pipe({"tenant": {"label": "team"}}), entry(labels={"team": "b"}), entry(labels={"x": "y"}))
    assert e.labels[TENANT_LABEL] == "b" and TENANT_LABEL not in f.labels
    (e, f, g) = run(pipe({"tenant": {"source": "customer"}}), entry(customer="c"), entry(), entry(customer={"no": 1}))
    assert e.labels[TENANT_LABEL] == "c" and TENANT_LABEL not in f.labels and TENANT_LABEL not in g.labels


# ---- drop ------------------------------------------------------------------------------------------

def dropped(p: Pipeline, *entries: Entry) -> list[str]:
    kept = {id(e) for e in p.run(list(entries))}
    return [e.line for e in entries if id(e) not in kept]


def test_drop_by_source_presence_value_and_list() -> None:
    assert dropped(pipe({"drop": {"source": "level"}}), entry("a", level="x"), entry("b")) == ["a"]
    p = pipe({"drop": {"source": "level", "value": "debug"}})
    assert dropped(p, entry("a", level="debug"), entry("b", level="debugging"), entry("c")) == ["a"]
    # a list of sources: every one present; with value, their values joined by the separator
    p = pipe({"drop": {"source": ["a", "b"]}})
    assert dropped(p, entry("both", a="1", b="2"), entry("one", a="1")) == ["both"]
    p = pipe({"drop": {"source": ["a", "b"], "separator": "|", "value": "1|2"}})
    assert dropped(p, entry("x", a="1", b="2"), entry("y", a="1", b="3")) == ["x"]


def test_drop_by_expression_on_line_or_sources() -> None:
    p = pipe({"drop": {"expression": ".*debug.*"}})
    assert dropped(p, entry("a debug line"), entry("info line")) == ["a debug line"]
    p = pipe({"drop": {"source": "msg", "expression": "^health"}})
    assert dropped(p, entry("1", msg="healthcheck"), entry("2", msg="wealth"), entry("3")) == ["1"]
    p = pipe({"drop": {"source": ["a", "b"], "expression": "x;y"}})  # default separator ";"
    assert dropped(p, entry("1", a="x", b="y"), entry("2", a="x")) == ["1"]


def test_drop_older_than_and_longer_than_combine_as_and() -> None:
    now = time.time_ns()
    p = pipe({"drop": {"older_than": "1h"}})
    assert dropped(p, entry("old", ts=now - 2 * 3600 * 10**9), entry("new", ts=now)) == ["old"]
    p = pipe({"drop": {"longer_than": "8"}})
    assert dropped(p, entry("123456789"), entry("12345678"), entry("ééééé")) == ["123456789", "ééééé"]
    p = pipe({"drop": {"longer_than": 4, "expression": "x"}})
    assert dropped(p, entry("xxxxx"), entry("x"), entry("yyyyy")) == ["xxxxx"]


def test_drop_counts_its_reason() -> None:
    p = pipe({"drop": {"expression": "a"}}, {"drop": {"expression": "b", "drop_counter_reason": "bees"}})
    run(p, entry("a"), entry("b"), entry("bb"), entry("c"))
    drops, size = p.take_drops()
    assert drops == {"drop_stage": 1, "bees": 2}
    assert size["bees"] == 3
    assert p.take_drops()[0] == {}


# ---- match -----------------------------------------------------------------------------------------

def test_selector_parsing() -> None:
    s = selector.parse('{app="api", env!="dev", pod=~"web-.*", ns!~"kube-.*"} |= "err" != "debug" |~ "x[0-9]" !~ `y\\d`')
    assert [(m.name, m.op, m.value) for m in s.matchers] == [
        ("app", "=", "api"), ("env", "!=", "dev"), ("pod", "=~", "web-.*"), ("ns", "!~", "kube-.*")]
    assert [f[:2] for f in s.filters] == [("|=", "err"), ("!=", "debug"), ("|~", "x[0-9]"), ("!~", "y\\d")]
    assert s.match_labels({"app": "api", "pod": "web-1", "ns": "default"})
    assert not s.match_labels({"app": "api", "pod": "xweb-1"})  # label regexes are anchored
    f = s.line_filter()
    assert f is not None
    assert f("an err on x1") and not f("an err on x1 debug") and not f("no match") and not f("err x1 y7")
    for bad in ("", "{}", "app=\"x\"", '{app="x"', '{app}', '{app="x"} |= ', '{app="x"} | "y"', '{app=~"("}'):
        with pytest.raises(selector.SelectorError):
            selector.parse(bad)


def test_match_keep_runs_nested_stages_on_matching_entries_only() -> None:
    p = pipe({"match": {"selector": '{app="api"} |~ "error|fatal"', "stages": [
        {"static_labels": {"level": "error"}}, {"drop": {"expression": "ignore"}}]}})
    a, b, c, d = entry("error 1", {"app": "api"}), entry("ok", {"app": "api"}), \
        entry("error 2", {"app": "web"}), entry("fatal ignore", {"app": "api"})
    out = run(p, a, b, c, d)
    assert out == [a, b, c]  # order kept, d dropped inside the nested pipeline
    assert a.labels == {"app": "api", "level": "error"}
    assert "level" not in b.labels and "level" not in c.labels
    assert p.take_drops()[0] == {"drop_stage": 1}


def test_match_drop_action_and_reason() -> None:
    p = pipe({"match": {"selector": '{app="noise"}', "action": "drop", "drop_counter_reason": "noisy"}})
    assert dropped(p, entry("1", {"app": "noise"}), entry("2", {"app": "api"})) == ["1"]
    assert p.take_drops()[0] == {"noisy": 1}
    p = pipe({"match": {"selector": '{app="noise"}', "action": "drop"}})
    run(p, entry("1", {"app": "noise"}))
    assert p.take_drops()[0] == {"match_stage": 1}


def test_match_equal_empty_matches_missing_label_and_nesting() -> None:
    p = pipe({"match": {"selector": '{env=""}', "pipeline_name": "no_env", "stages": [
        {"match": {"selector": '{app="a"}', "stages": [{"static_labels": {"env": "default"}}]}}]}})
    e, f, g = entry("", {"app": "a"}), entry("", {"app": "a", "env": "x"}), entry("", {"app": "b"})
    run(p, e, f, g)
    assert e.labels["env"] == "default" and f.labels["env"] == "x" and "env" not in g.labels


# ---- limit and sampling ----------------------------------------------------------------------------

def test_limit_drop_keeps_burst_then_rate() -> None:
    p = pipe({"limit": {"rate": 1, "burst": 3, "drop": True}})
    out = run(p, *(entry(str(i)) for i in range(10)))
    assert len(out) == 3
    assert p.take_drops()[0] == {"ratelimit_drop_stage": 7}


def test_limit_by_label_has_a_bucket_per_value() -> None:
    p = pipe({"limit": {"rate": 1, "burst": 2, "drop": True, "by_label_name": "app"}})
    entries = [entry(str(i), {"app": "a" if i % 2 else "b"}) for i in range(10)] + [entry("nolabel") for _ in range(5)]
    out = run(p, *entries)
    assert sum(e.labels.get("app") == "a" for e in out) == 2
    assert sum(e.labels.get("app") == "b" for e in out) == 2
    assert sum("app" not in e.labels for e in out) == 5  # no such label: not limited


def test_limit_without_drop_holds_instead_of_dropping() -> None:
    p = pipe({"limit": {"rate": 10, "burst": 2}})
    out = run(p, *(entry(str(i)) for i in range(7)))
    assert len(out) == 7
    assert 0.45 <= p.take_hold() <= 0.55  # 5 entries over the burst at 10/s
    assert p.take_drops()[0] == {}
    p2 = build([{"limit": {"rate": 10, "burst": 2}}], "job", max_hold=0.25)
    assert p2 is not None
    assert len(p2.run([entry(str(i)) for i in range(7)])) == 4  # 2 at once, 2 within 0.25 s
    assert p2.take_drops()[0] == {"pipeline_timeout": 3}


def test_sampling_rate() -> None:
    assert len(run(pipe({"sampling": {"rate": 1}}), *(entry() for _ in range(100)))) == 100
    p = pipe({"sampling": {"rate": 0, "drop_counter_reason": "sampled"}})
    assert run(p, *(entry() for _ in range(100))) == []
    assert p.take_drops()[0] == {"sampled": 100}
    kept = len(run(pipe({"sampling": {"rate": 0.5}}), *(entry() for _ in range(4000))))
    assert 1700 < kept < 2300


# ---- metrics ---------------------------------------------------------------------------------------

def scrape() -> str:
    return generate_latest(REGISTRY).decode()


def sample(text: str, name: str, labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_counters_gauges_histograms() -> None:
    p = pipe({"metrics": {
        "t_lines_total": {"type": "Counter", "description": "lines", "config": {"match_all": True, "action": "inc"}},
        "t_bytes_total": {"type": "counter", "config": {"match_all": True, "count_entry_bytes": True, "action": "add"}},
        "t_errors_total": {"type": "counter", "source": "level", "config": {"value": "error", "action": "inc"}},
        "t_size_total": {"type": "counter", "source": "size", "config": {"action": "add"}},
        "t_queue": {"type": "gauge", "source": "depth", "config": {"action": "set"}},
        "t_inflight": {"type": "gauge", "source": "depth", "config": {"action": "inc"}},
        "t_latency": {"type": "histogram", "source": "took", "config": {"buckets": [0.1, 1]}},
    }})
    run(p, entry("héllo", {"app": "a", "__hidden": "x"}, level="error", size="10", depth=5, took="250ms"),
        entry("b", {"app": "a"}, level="info", size=2.5, depth="7", took="2"),
        entry("c", {"app": "b"}, level="error", size="junk"))
    text = scrape()
    assert sample(text, "promtail_custom_t_lines_total", 'app="a"') == 2
    assert sample(text, "promtail_custom_t_lines_total", 'app="b"') == 1
    assert sample(text, "promtail_custom_t_bytes_total", 'app="a"') == 7  # "héllo" is 6 bytes, "b" 1
    assert sample(text, "promtail_custom_t_errors_total", 'app="a"') == 1
    assert sample(text, "promtail_custom_t_errors_total", 'app="b"') == 1
    assert sample(text, "promtail_custom_t_size_total", 'app="a"') == 12.5
    assert sample(text, "promtail_custom_t_queue", 'app="a"') == 7
    assert sample(text, "promtail_custom_t_inflight", 'app="a"') == 2
    assert sample(text, "promtail_custom_t_latency_bucket", 'app="a",le="0.1"') == 0
    assert sample(text, "promtail_custom_t_latency_bucket", 'app="a",le="1.0"') == 1
    assert sample(text, "promtail_custom_t_latency_bucket", 'app="a",le="+Inf"') == 2
    assert sample(text, "promtail_custom_t_latency_sum", 'app="a"') == 2.25
    assert "# TYPE promtail_custom_t_lines_total counter" in text
    assert "# HELP promtail_custom_t_lines_total lines" in text
    assert "__hidden" not in text


def test_metrics_prefix_and_idle_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    p = pipe({"metrics": {"t_idle_total": {"type": "counter", "prefix": "my_", "max_idle_duration": "2s",
                                           "config": {"match_all": True, "action": "inc"}}}})
    run(p, entry("x", {"app": "a"}))
    assert sample(scrape(), "my_t_idle_total", 'app="a"') == 1
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 3)
    assert sample(scrape(), "my_t_idle_total", 'app="a"') is None


def test_metrics_of_a_discarded_pipeline_disappear() -> None:
    p = pipe({"metrics": {"t_gone_total": {"type": "counter", "config": {"match_all": True, "action": "inc"}}}})
    run(p, entry("x", {"app": "a"}))
    assert sample(scrape(), "promtail_custom_t_gone_total", 'app="a"') == 1
    del p
    import gc

    gc.collect()
    assert "promtail_custom_t_gone_total" not in scrape()


# ---- the engine ------------------------------------------------------------------------------------

def test_no_stages_builds_nothing() -> None:
    assert build([], "job") is None and build(None, "job") is None


def test_stages_run_in_order() -> None:
    p = pipe({"static_labels": {"a": "1"}}, {"labels": {"b": "a"}}, {"labeldrop": ["a"]})
    (e,) = run(p, entry())
    assert e.labels == {}  # `labels` read the extracted map, where a was never put


def test_flush_sends_held_entries_through_the_later_stages() -> None:
    from relay.pipeline.stages.base import KINDS, Stage

    class Hold(Stage):
        kind = "t_hold"
        flush_every = 0.5

        def __init__(self) -> None:
            self.held: list[Entry] = []

        def run(self, entries: list[Entry]) -> list[Entry]:
            self.held += entries
            return []

        def flush(self) -> list[Entry]:
            out, self.held = self.held, []
            return out

        def flush_expired(self) -> list[Entry]:
            out, self.held = self.held[:1], self.held[1:]
            return out

    KINDS["t_hold"] = lambda config, ctx: Hold()
    try:
        p = pipe({"t_hold": {}}, {"static_labels": {"after": "yes"}})
        assert p.flush_every == 0.5
        assert run(p, entry("a"), entry("b"), entry("c")) == []
        out = p.flush_expired()
        assert [e.line for e in out] == ["a"] and out[0].labels["after"] == "yes"
        out = p.flush()
        assert [e.line for e in out] == ["b", "c"] and all(e.labels["after"] == "yes" for e in out)
        assert p.flush() == [] and p.flush_expired() == []
    finally:
        del KINDS["t_hold"]


# ---- validation: every error names job, index, kind and the problem ---------------------------------

ERRORS: list[tuple[Any, str]] = [
    ("labels", "[1]: invalid YAML config, make sure each stage of your pipeline is a YAML object"),
    ({"labels": {}, "drop": {}}, "[1]: pipeline stage must contain only one key"),
    ({}, "[1]: pipeline stage cannot be empty"),
    ({"nosuch": {}}, "[1] (nosuch): Unknown stage type: nosuch"),
    ({"labels": None}, "(labels): label stage config cannot be empty"),
    ({"labels": {"bad-name": ""}}, "(labels): invalid label name: bad-name"),
    ({"labels": ["a"]}, "(labels): labels stage config must be a mapping"),
    ({"labels": {"a": 5}}, "(labels): a: expected a source name (string)"),
    ({"structured_metadata": None}, "(structured_metadata): label stage config cannot be empty"),
    ({"structured_metadata": {"1x": ""}}, "(structured_metadata): invalid label name: 1x"),
    ({"labelallow": []}, "(labelallow): labelallow stage config cannot be empty"),
    ({"labelallow": "app"}, "(labelallow): expected a list of label names"),
    ({"labeldrop": None}, "(labeldrop): labeldrop stage config cannot be empty"),
    ({"static_labels": None}, "(static_labels): static_labels stage config cannot be empty"),
    ({"static_labels": {"a-b": "x"}}, "(static_labels): invalid label name: a-b"),
    ({"static_labels": {"a": [1]}}, "(static_labels): a: expected a label value"),
    ({"tenant": {}}, "(tenant): label, source or value config are required"),
    ({"tenant": {"source": "a", "value": "b"}}, "(tenant): label, source and value are mutually exclusive"),
    ({"tenant": {"label": "a", "source": "b"}}, "(tenant): label, source and value are mutually exclusive"),
    ({"tenant": {"value": "a", "tenant": "b"}}, "(tenant): unknown key 'tenant' in tenant stage"),
    ({"drop": {}}, "(drop): drop stage config must contain at least one of `source`, `expression`, `older_than` or `longer_than`"),
    ({"drop": {"source": 5}}, "(drop): drop stage source invalid type should be string or list of strings"),
    ({"drop": {"older_than": "1 day"}}, "(drop): drop stage invalid duration, 1 day cannot be converted to a duration"),
    ({"drop": {"expression": "x", "value": "y"}}, "(drop): drop stage config must contain `source` if `value` is specified"),
    ({"drop": {"source": "s", "expression": "x", "value": "y"}}, "(drop): drop stage config error, `value` and `expression` cannot both be defined at the same time."),
    ({"drop": {"expression": "("}}, "(drop): drop stage regex compilation error: error parsing regexp"),
    ({"drop": {"longer_than": "big"}}, "(drop): drop stage failed to parse longer_than to bytes"),
    ({"drop": {"source": "a", "values": "b"}}, "(drop): unknown key 'values' in drop stage"),
    ({"match": None}, "(match): match stage config cannot be empty"),
    ({"match": {"selector": '{a="b"}', "pipeline_name": "", "stages": [{"labeldrop": ["a"]}]}}, "(match): match stage pipeline name can be omitted but cannot be an empty string"),
    ({"match": {"stages": [{"labeldrop": ["a"]}]}}, "(match): selector statement required for match stage"),
    ({"match": {"selector": '{a="b"}', "action": "keep_all"}}, "(match): match stage action should be 'keep' or 'drop'"),
    ({"match": {"selector": '{a="b"}'}}, "(match): match stage requires at least one additional stage to be defined in '- stages'"),
    ({"match": {"selector": '{a="b"}', "action": "drop", "stages": [{"labeldrop": ["a"]}]}}, "(match): match stage configured to drop entries cannot contains stages"),
    ({"match": {"selector": "{a=}", "stages": [{"labeldrop": ["a"]}]}}, "(match): invalid selector syntax for match stage: parse error"),
    ({"match": {"selector": '{a="b"}', "stages": [{"labeldrop": ["a"]}, {"tenant": {}}]}}, "(match): stages[1] (tenant): label, source or value config are required"),
    ({"match": {"selector": '{a="b"}', "stages": "labels"}}, "(match): stages: expected a list of stages"),
    ({"limit": {"rate": 0, "burst": 1}}, "(limit): limit stage failed to parse rate or burst"),
    ({"limit": {"rate": 1}}, "(limit): limit stage failed to parse rate or burst"),
    ({"limit": {"rate": 1, "burst": 1, "by_label_name": "app"}}, "(limit): When ratelimiting by label, drop must be true"),
    ({"limit": {"rate": "fast", "burst": 1}}, "(limit): cannot parse 'rate' as float: strconv.ParseFloat: parsing \"fast\": invalid syntax"),
    ({"sampling": {"rate": 1.5}}, "(sampling): sampling stage failed to parse rate,Sampling Rate must be between 0.0 and 1.0, received 1.500000"),
    ({"metrics": None}, "(metrics): empty metric stage configuration"),
    ({"metrics": {"m": {"type": "summary"}}}, "(metrics): m: invalid metric type 'summary', metric type must be one of 'counter', 'gauge', or 'histogram'"),
    ({"metrics": {"m": {"type": "counter", "max_idle_duration": "soon", "config": {"action": "inc"}}}}, "(metrics): m: max_idle_duration could not be parsed as a time.Duration"),
    ({"metrics": {"m": {"type": "counter", "max_idle_duration": "500ms", "config": {"action": "inc"}}}}, "(metrics): m: max_idle_duration less than 1s not allowed"),
    ({"metrics": {"m": {"type": "counter", "config": {}}}}, "(metrics): m: counter action must be defined as either `inc` or `add`"),
    ({"metrics": {"m": {"type": "counter", "config": {"action": "set"}}}}, "(metrics): m: action set is not valid, action must be either `inc` or `add`"),
    ({"metrics": {"m": {"type": "counter", "config": {"action": "inc", "match_all": True, "value": "x"}}}}, "(metrics): m: `match_all: true` cannot be combined with `value`"),
    ({"metrics": {"m": {"type": "counter", "config": {"action": "add", "count_entry_bytes": True}}}}, "(metrics): m: `count_entry_bytes: true` can only be set with `match_all: true`"),
    ({"metrics": {"m": {"type": "counter", "config": {"action": "inc", "match_all": True, "count_entry_bytes": True}}}}, "(metrics): m: `count_entry_bytes: true` can only be used with `action: add`"),
    ({"metrics": {"m": {"type": "gauge", "config": {}}}}, "(metrics): m: gauge action must be defined as `set`, `inc`, `dec`, `add`, or `sub`"),
    ({"metrics": {"m": {"type": "gauge", "config": {"action": "observe"}}}}, "(metrics): m: action observe is not valid, action must be `set`, `inc`, `dec`, `add`, or `sub`"),
    ({"metrics": {"m": {"type": "histogram", "config": {"buckets": "1,2"}}}}, "(metrics): m: buckets: expected a list of numbers"),
    ({"metrics": {"m-x": {"type": "gauge", "config": {"action": "inc"}}}}, "(metrics): m-x: invalid metric name"),
    ({"metrics": {"m": {"type": "gauge", "typo": 1, "config": {"action": "inc"}}}}, "(metrics): unknown key 'typo' in metrics m stage"),
]


@pytest.mark.parametrize(("stage", "message"), ERRORS)
def test_every_validation_error(stage: Any, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        build([{"static_labels": {"ok": "1"}}, stage], "api")
    text = str(e.value)
    assert text.startswith('job "api" pipeline_stages[1]'), text
    assert message in text, text


def test_metric_type_clash_is_refused() -> None:
    keep = pipe({"metrics": {"t_clash": {"type": "gauge", "config": {"action": "inc"}}}})
    with pytest.raises(ConfigError, match="metric promtail_custom_t_clash is already defined as a gauge"):
        build([{"metrics": {"t_clash": {"type": "histogram"}}}], "job")
    assert keep.stages


# A valid block for every kind whose block has fixed keys; each test adds one misspelt key to it.
FIXED_KEYS: dict[str, Any] = {
    "cri": {"max_partial_lines": 10},
    "decolorize": {},
    "docker": {},
    "drop": {"source": "level", "value": "debug"},
    "eventlogmessage": {"source": "message"},
    "geoip": {"db": "/nonexistent.mmdb", "source": "ip", "db_type": "city"},
    "json": {"expressions": {"level": ""}},
    "limit": {"rate": 10, "burst": 10},
    "logfmt": {"mapping": {"level": ""}},
    "match": {"selector": '{app="a"}', "stages": [{"labeldrop": ["x"]}]},
    "multiline": {"firstline": "^x"},
    "output": {"source": "msg"},
    "pack": {"labels": ["app"]},
    "regex": {"expression": "(?P<level>\\w+)"},
    "replace": {"expression": "(secret)", "replace": "***"},
    "sampling": {"rate": 0.5},
    "template": {"source": "level", "template": "{{ .Value }}"},
    "tenant": {"value": "team-a"},
    "timestamp": {"source": "ts", "format": "RFC3339"},
}
# Kinds whose block has no fixed keys: every key is a label name (or a metric name: each metric's
# own block has fixed keys, tested below), or the block is a list of names.
NAME_KEYS = {"labels", "structured_metadata", "non_indexed_labels", "static_labels", "labelallow", "labeldrop",
             "metrics"}


def test_every_kind_is_either_fixed_keys_or_names() -> None:
    # A new kind must join one of the two lists, so the test below cannot miss it.
    assert set(MODULES) == set(FIXED_KEYS) | NAME_KEYS and not set(FIXED_KEYS) & NAME_KEYS


@pytest.mark.parametrize("kind", sorted(FIXED_KEYS))
def test_an_unknown_key_is_refused_in_every_stage_kind(kind: str) -> None:
    if kind != "geoip":  # geoip needs a database file; the typo is refused before the file is opened
        pipe({kind: FIXED_KEYS[kind]})  # without the typo the block is valid
    with pytest.raises(ConfigError) as e:
        build([{"static_labels": {"ok": "1"}}, {kind: {**FIXED_KEYS[kind], "sorce": "x"}}], "api")
    assert str(e.value) == f'job "api" pipeline_stages[1] ({kind}): unknown key \'sorce\' in {kind} stage'


@pytest.mark.parametrize(("block", "where"), [
    ({"lines": {"type": "counter", "sorce": "x", "config": {"action": "inc", "match_all": True}}}, "metrics lines"),
    ({"lines": {"type": "counter", "config": {"action": "inc", "match_all": True, "sorce": "x"}}}, "metrics lines config"),
    ({"lines": {"type": "gauge", "config": {"action": "inc", "sorce": "x"}}}, "metrics lines config"),
    ({"lines": {"type": "histogram", "config": {"sorce": "x"}}}, "metrics lines config"),
])
def test_an_unknown_key_is_refused_inside_a_metric(block: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError, match=f"\\(metrics\\): unknown key 'sorce' in {where} stage$"):
        build([{"metrics": block}], "api")


def test_an_unknown_key_is_refused_in_a_nested_stage() -> None:
    nested = {"match": {"selector": '{app="a"}', "stages": [{"json": {"expressions": {"a": ""}, "sorce": "x"}}]}}
    with pytest.raises(ConfigError, match=r"\[0\] \(match\): stages\[0\] \(json\): unknown key 'sorce' in json stage$"):
        build([nested], "api")


def test_pipeline_stages_must_be_a_list() -> None:
    from relay import sources  # noqa: F401
    from relay.config import parse_config

    with pytest.raises(ConfigError, match='job "x" pipeline_stages: expected a list of stages'):
        parse_config({"scrape_configs": [{"job_name": "x", "loki_push_api": {}, "pipeline_stages": {"labels": {}}}]})
