"""Issue 11, item 4: the Grafana dashboard and the Prometheus alert rules use only metrics and labels the
relay exports (no dead panel), their PromQL parses (promtool), and each alert fires on its trouble
(promtool test rules, tests/prometheus/alerts_test.yml)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from tests.conftest import ROOT, TESTS, free_port
from tests.loki_receiver import Receiver

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "loki-relay.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

# Identifiers of PromQL itself, not metric names.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "deriv", "irate", "delta",
    "histogram_quantile", "vector", "or", "and", "unless", "on", "ignoring", "group_left", "group_right",
    "max_over_time", "min_over_time", "avg_over_time", "absent", "label_values", "offset", "bool",
}
TARGET_LABELS = {"instance"}  # added by Prometheus to every scraped series
BUILTIN = {"up": {"job", "instance"}}  # series Prometheus makes itself


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(panel title, expr, legendFormat) of every panel target, with Grafana's variables filled in."""
    doc = json.loads(DASHBOARD.read_text())
    out = []
    for panel in doc["panels"]:
        for t in panel.get("targets", []):
            out.append((panel["title"], grafana_vars(t["expr"]), t.get("legendFormat", "")))
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            out.append((f"variable {var['name']}", var["definition"], ""))
    return out


def grafana_vars(expr: str) -> str:
    return (expr.replace("$__rate_interval", "5m").replace("$instance", ".*")
            .replace("$scrape_job", "(.+/)?loki-relay"))


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def names_and_labels(expr: str) -> tuple[set[str], set[str]]:
    """Metric names and label names an expression uses (a plain extractor, enough for our PromQL)."""
    if expr.startswith("label_values("):  # Grafana's variable query: label_values(metric, label)
        metric, label = (p.strip() for p in expr[len("label_values("):-1].split(","))
        return {metric}, {label}
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values are not names
    text = re.sub(r"\[[^\]]*\]", "", text)  # range durations
    labels: set[str] = set()
    for block in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", block))
    text = re.sub(r"\{[^}]*\}", "", text)
    for block in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", text):
        labels |= {x.strip() for x in block.split(",") if x.strip()}
    text = re.sub(r"\b(?:by|without)\s*\([^)]*\)", "", text)
    words = set(re.findall(r"\b[a-zA-Z_:][\w:]*\b", re.sub(r"\b\d+(?:\.\d+)?(?:e\d+)?\b", "", text)))
    metrics = {w for w in words if w.startswith("loki_relay_") or w in BUILTIN}
    unknown = words - metrics - PROMQL_WORDS
    assert not unknown, f"not a relay metric nor PromQL: {sorted(unknown)} in {expr}"
    return metrics, labels


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Sample name -> label names, scraped from a relay driven through every path the panels show."""
    from tests.conftest import RelayProcess

    tmp = tmp_path_factory.mktemp("metrics")
    with Receiver.start() as receiver:
        port = free_port()
        cfg = {
            "clients": [{"url": receiver.url, "name": "loki", "batchwait": "20ms", "timeout": "1s",
                         "backoff_config": {"min_period": "20ms", "max_period": "50ms", "max_retries": 1}}],
            "scrape_configs": [{"job_name": "push", "loki_push_api": {
                "server": {"http_listen_address": "127.0.0.1", "http_listen_port": port}}}],
            "limits_config": {"max_buffered_bytes": "4KiB", "backpressure_wait": "0s"},
            "wal": {"enabled": True, "dir": str(tmp / "wal")},
        }
        rel = RelayProcess(tmp, cfg, [], None)
        try:
            rel.wait_ready()
            url = f"http://127.0.0.1:{port}/loki/api/v1/push"

            def push(labels: dict[str, str], line: str) -> int:
                doc = {"streams": [{"stream": labels, "values": [[str(time.time_ns()), line]]}]}
                return httpx.post(url, content=orjson.dumps(doc), headers={"Content-Type": "application/json"},
                                  timeout=10).status_code

            def settle() -> None:
                deadline = time.monotonic() + 10
                while rel.metric("loki_relay_buffered_entries") and time.monotonic() < deadline:
                    time.sleep(0.05)

            assert push({"app": "ok"}, "delivered") == 204  # intake, latency, delivery, WAL
            settle()
            receiver.fail(500, 1)  # a send error, then a retry that succeeds
            assert push({"app": "ok"}, "retried") == 204
            settle()
            receiver.fail(400, 1)  # dropped for good: ingester_error
            assert push({"app": "ok"}, "refused by loki") == 204
            settle()
            assert push({"1bad": "x"}, "invalid labels") == 400  # dropped at intake: invalid
            receiver.hang()  # nothing drains: fill the 4 KiB, then backpressure
            assert any(push({"app": "full"}, f"{i} " + "x" * 500) == 429 for i in range(40))
            receiver.clear_faults()
            text = rel.metrics()
        finally:
            rel.stop()
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][\w:]*)(\{(.*)\})?\s", line)
        assert m, line
        labels = set(re.findall(r'([a-zA-Z_]\w*)="', m.group(3) or ""))
        out.setdefault(m.group(1), set()).update(labels)
    return out


def check(where: str, expr: str, legend_labels: set[str], exported: dict[str, set[str]]) -> None:
    metrics, labels = names_and_labels(expr)
    assert metrics, f"{where}: no metric in {expr}"
    have: set[str] = set(TARGET_LABELS)
    for name in metrics:
        if name in BUILTIN:
            have |= BUILTIN[name]
            continue
        assert name in exported, f"{where}: {name} is not exported by the relay"
        have |= exported[name]
    missing = (labels | legend_labels) - have
    assert not missing, f"{where}: labels {sorted(missing)} are not on {sorted(metrics)}"


def test_dashboard_uses_only_exported_metrics_and_labels(exported: dict[str, set[str]]) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    for title, expr, legend in queries:
        check(f"panel {title!r}", expr, set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend)), exported)


def test_alert_rules_use_only_exported_metrics_and_labels(exported: dict[str, set[str]]) -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} == {"LokiRelayEntriesDropped", "LokiRelayBackpressure", "LokiRelayWALGrowing",
                                           "LokiRelayLokiFailing", "LokiRelayDown"}
    for r in rules:
        used = set()
        for text in r.get("annotations", {}).values():
            used |= set(re.findall(r"\$labels\.(\w+)", text))
        check(f"alert {r['alert']}", r["expr"], used, exported)


def test_the_checker_catches_a_dead_panel(exported: dict[str, set[str]]) -> None:
    with pytest.raises(AssertionError, match="not exported"):
        check("typo", "sum(rate(loki_relay_recieved_entries_total[5m]))", set(), exported)
    with pytest.raises(AssertionError, match="labels"):
        check("wrong label", "sum by (tenant) (rate(loki_relay_sent_entries_total[5m]))", set(), exported)
    with pytest.raises(AssertionError, match="labels"):
        check("wrong legend", "sum by (client) (rate(loki_relay_sent_entries_total[5m]))", {"job"}, exported)


def test_the_dashboard_shows_what_the_issue_lists() -> None:
    used = " ".join(expr for _, expr, _ in dashboard_queries())
    for name in ("loki_relay_received_entries_total", "loki_relay_request_duration_seconds_count",
                 "loki_relay_sent_entries_total", "loki_relay_sent_bytes_total", "loki_relay_dropped_entries_total",
                 "loki_relay_backpressure_requests_total", "loki_relay_held_bytes", "loki_relay_held_bytes_limit",
                 "loki_relay_wal_bytes", "loki_relay_send_errors_total", "loki_relay_batch_retries_total",
                 "loki_relay_request_duration_seconds_bucket"):
        assert name in used, name
    assert "histogram_quantile(0.5," in used and "histogram_quantile(0.99," in used
    assert "by (instance)" in used  # per instance, beside the totals


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert Path(PROMTOOL).exists(), "promtool is missing (.ci/run installs Debian's prometheus package)"
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_checks_the_rules() -> None:
    r = promtool("check", "rules", str(ALERTS))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 5 rules found" in r.stdout


def test_promtool_unit_tests_every_alert() -> None:
    r = promtool("test", "rules", "alerts_test.yml", cwd=TESTS / "prometheus")
    assert r.returncode == 0, r.stdout + r.stderr
    tested = set(re.findall(r"alertname:\s*(\w+)", (TESTS / "prometheus" / "alerts_test.yml").read_text()))
    assert tested == {r["alert"] for r in alert_rules()}


def test_dashboard_promql_parses(tmp_path: Path) -> None:
    """Every panel query, as a recording rule, through Prometheus' own parser."""
    rules = [{"record": f"panel:{i}", "expr": expr} for i, (_, expr, _) in enumerate(dashboard_queries())
             if not expr.startswith("label_values(")]
    f = tmp_path / "panels.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    r = promtool("check", "rules", str(f))
    assert r.returncode == 0, r.stdout + r.stderr
