"""Labels per stream (static labels, relabel_configs, `__*` removal, drops counted), in-process: the relay's
job app over ASGI, its client sending to an in-process Loki (tests/inproc.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import push_config
from tests.inproc import InProcessRelay, Loki
from tests.loki_receiver import encode_push

PUSH = "/loki/api/v1/push"


def jpush(relay: InProcessRelay, *streams: tuple[dict[str, str], list[str]], tenant: str | None = None) -> httpx.Response:
    now = time.time_ns()
    doc = {"streams": [{"stream": lab, "values": [[str(now + i), ln] for i, ln in enumerate(lines)]}
                       for lab, lines in streams]}
    headers = {"Content-Type": "application/json"}
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    return relay.post("push", PUSH, orjson.dumps(doc), headers)


def by_line(entries: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {e["line"]: e["labels"] for e in entries}


@pytest.fixture
def loki() -> Loki:
    return Loki()


@pytest.fixture
def start(loki: Loki) -> Iterator[Any]:
    """start(relabel_configs=None, **job) -> the relay in-process, one push job sending to `loki`."""
    made: list[InProcessRelay] = []

    def make(relabel_configs: list[dict[str, Any]] | None = None, **job: Any) -> InProcessRelay:
        cfg = push_config("http://loki.invalid/loki/api/v1/push", 0, **job)
        if relabel_configs is not None:
            cfg["scrape_configs"][0]["relabel_configs"] = relabel_configs
        made.append(InProcessRelay(cfg, loki))
        return made[-1]

    yield make
    for relay in made:
        relay.close()


def test_static_labels_override_incoming(loki: Loki, start: Any) -> None:
    relay = start(labels={"env": "prod", "source": "relay"})
    assert jpush(relay, ({"env": "dev", "app": "a"}, ["one"]), ({"app": "b"}, ["two"])).status_code == 204
    assert by_line(loki.wait_for(2)) == {
        "one": {"env": "prod", "source": "relay", "app": "a"},
        "two": {"env": "prod", "source": "relay", "app": "b"},
    }


def test_relabel_after_static_then_dunder_labels_removed(loki: Loki, start: Any) -> None:
    relay = start(labels={"__static_src": "from-static"}, relabel_configs=[
        # static labels are visible to the rules
        {"source_labels": ["__static_src"], "target_label": "copied"},
        # a regex with a capture group
        {"source_labels": ["__aws_cloudwatch_log_group"], "regex": "/aws/lambda/(.*)", "target_label": "function"},
        # labelmap of a __ prefix
        {"action": "labelmap", "regex": "__meta_(.+)", "replacement": "m_$1"},
        # an empty result deletes the label
        {"target_label": "env", "replacement": ""},
        {"action": "lowercase", "source_labels": ["app"], "target_label": "app"},
        {"action": "labeldrop", "regex": "secret.*"},
    ])
    r = jpush(relay, ({"app": "MyApp", "env": "dev", "secret_key": "s", "__aws_cloudwatch_log_group": "/aws/lambda/fn1",
                      "__meta_zone": "eu-1a", "__internal": "x"}, ["line"]))
    assert r.status_code == 204, r.text
    (e,) = loki.wait_for(1)
    assert e["labels"] == {"app": "myapp", "copied": "from-static", "function": "fn1", "m_zone": "eu-1a"}


def test_dunder_labels_removed_without_rules(loki: Loki, start: Any) -> None:
    relay = start()
    assert jpush(relay, ({"app": "a", "__hidden": "h", "__aws_log_type": "cloudwatch"}, ["x"])).status_code == 204
    (e,) = loki.wait_for(1)
    assert e["labels"] == {"app": "a"}
    assert e["labels_raw"] == '{app="a"}'


def test_label_less_stream_dropped_and_counted(loki: Loki, start: Any) -> None:
    rel = start()
    r = jpush(rel, ({"__only": "dunder"}, ["lost 1", "lost 2"]), ({}, ["lost 3"]), ({"app": "kept"}, ["kept"]))
    assert r.status_code == 204, r.text
    assert by_line(loki.wait_for(1)) == {"kept": {"app": "kept"}}
    time.sleep(0.3)
    assert len(loki.entries()) == 1
    assert all(req["status"] == 204 for req in loki.requests())  # nothing label-less was sent
    assert rel.metric("loki_relay_dropped_entries_total", reason="no_labels", job="push") == 3
    assert rel.metric("loki_relay_dropped_bytes_total", reason="no_labels", job="push") > 0
    assert rel.metric("loki_relay_received_entries_total", job="push") == 4


def test_relabel_drop_counted(loki: Loki, start: Any) -> None:
    rel = start(relabel_configs=[{"action": "drop", "source_labels": ["level"], "regex": "debug"}])
    r = jpush(rel, ({"app": "a", "level": "debug"}, ["d1", "d2"]), ({"app": "a", "level": "info"}, ["i1"]))
    assert r.status_code == 204, r.text
    assert by_line(loki.wait_for(1)) == {"i1": {"app": "a", "level": "info"}}
    assert rel.metric("loki_relay_dropped_entries_total", reason="relabel", job="push") == 2


def test_keep_action(loki: Loki, start: Any) -> None:
    rel = start(relabel_configs=[{"action": "keep", "source_labels": ["app"], "regex": "api|web"}])
    assert jpush(rel, ({"app": "api"}, ["api"]), ({"app": "db"}, ["db"]), ({"app": "web"}, ["web"])).status_code == 204
    assert sorted(by_line(loki.wait_for(2))) == ["api", "web"]
    assert rel.metric("loki_relay_dropped_entries_total", reason="relabel", job="push") == 1


def test_invalid_streams_counted(loki: Loki, start: Any) -> None:
    rel = start()
    too_many = {f"l{i}": "v" for i in range(16)}  # Loki's default limit is 15 label names
    r = jpush(rel, ({"bad-name": "x"}, ["i1", "i2"]), (too_many, ["i3"]), ({"app": "ok"}, ["ok"]))
    assert r.status_code == 400
    assert "bad-name" in r.text and "16 label names" in r.text
    t = time.time_ns()
    r = rel.post("push", PUSH, encode_push([('{app="broken', [(t, "i4"), (t, "i5")]), ('{app="ok"}', [(t, "ok2")])]),
                 {"Content-Type": "application/x-protobuf"})
    assert r.status_code == 400
    assert sorted(by_line(loki.wait_for(2))) == ["ok", "ok2"]
    assert rel.metric("loki_relay_dropped_entries_total", reason="invalid", job="push") == 5
    assert loki.rejected() == 0  # nothing Loki would refuse was sent


def test_tenant_from_reserved_label(loki: Loki, start: Any) -> None:
    relay = start(relabel_configs=[{"source_labels": ["team"], "target_label": "__tenant_id__"}])
    assert jpush(relay, ({"app": "a", "team": "red"}, ["to red"]), ({"app": "b"}, ["default"]),
                 tenant="hdr").status_code == 204
    assert [e["line"] for e in loki.wait_for(1, tenant="red")] == ["to red"]
    assert [e["line"] for e in loki.wait_for(1, tenant="hdr")] == ["default"]
    assert loki.entries(tenant="red")[0]["labels"] == {"app": "a", "team": "red"}


def test_same_labels_from_many_requests_keep_their_own_rules_result(loki: Loki, start: Any) -> None:
    """The per-label-set cache must not mix label sets up."""
    relay = start(relabel_configs=[{"source_labels": ["app"], "target_label": "copy"}])
    for i in range(20):
        assert jpush(relay, ({"app": f"a{i % 4}"}, [f"l{i}"])).status_code == 204
    got = by_line(loki.wait_for(20))
    assert got == {f"l{i}": {"app": f"a{i % 4}", "copy": f"a{i % 4}"} for i in range(20)}
