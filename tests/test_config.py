"""Promtail's YAML as the config; lambda-promtail's documented configs run unchanged. In-process where the
point is the config (tests/inproc.py); a process where it is the CLI: -check-syntax, exit codes, a file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from relay.config import ConfigError, parse_config
from tests.conftest import ROOT, free_port, push_config
from tests.inproc import InProcessRelay, Loki

LOKI = "http://loki.invalid/loki/api/v1/push"  # in-process tests: the client sends to tests.inproc.Loki

# The two Promtail configs from the lambda-promtail docs, verbatim except for addresses and ports
# ({loki}, {server}, {push}, {grpc}), which the test fills in.

# 1. relabel_configs at scrape level (docs/sources/send-data/lambda-promtail/_index.md).
LAMBDA_DOC_SCRAPE_LEVEL = """
server:
  http_listen_port: {server}
  grpc_listen_port: 0

positions:
  filename: /tmp/positions.yaml

clients:
  - url: {loki}

scrape_configs:
  - job_name: push1
    loki_push_api:
      server:
        http_listen_port: {push}
        grpc_listen_port: {grpc}
      labels:
        # Adds a label on all streams indicating it was processed by the lambda-promtail workflow.
        promtail: 'lambda-promtail'
    relabel_configs:
      - source_labels: ['__aws_log_type']
        target_label: 'log_type'
      # Maps the cloudwatch log group into a label called `log_group` for use in Loki.
      - source_labels: ['__aws_cloudwatch_log_group']
        target_label: 'log_group'
      # Maps the loadbalancer name into a label called `loadbalancer_name` for use in Loki.
      - source_labels: ['__aws_s3_log_lb']
        target_label: 'loadbalancer_name'
"""

# 2. relabel_configs nested under loki_push_api (the older lambda-promtail README).
LAMBDA_DOC_NESTED = """
server:
  http_listen_port: {server}
  grpc_listen_port: 0

positions:
  filename: /tmp/positions.yaml

clients:
  - url: {loki}

scrape_configs:
  - job_name: push1
    loki_push_api:
      server:
        http_listen_port: {push}
        grpc_listen_port: {grpc}
      labels:
        # Adds a label on all streams indicating it was processed by the lambda-promtail workflow.
        promtail: 'lambda-promtail'
      relabel_configs:
        # Maps the cloudwatch log group into a label called `log_group` for use in Loki.
        - source_labels: ['__aws_cloudwatch_log_group']
          target_label: 'log_group'
"""


def jpush(port: int, streams: list[tuple[dict[str, str], list[str]]]) -> httpx.Response:
    now = time.time_ns()
    doc = {"streams": [{"stream": lab, "values": [[str(now + i), ln] for i, ln in enumerate(lines)]}
                       for lab, lines in streams]}
    return httpx.post(f"http://127.0.0.1:{port}/loki/api/v1/push", content=orjson.dumps(doc),
                      headers={"Content-Type": "application/json"}, timeout=10)


def ipush(relay: InProcessRelay, streams: list[tuple[dict[str, str], list[str]]], job: str = "push") -> httpx.Response:
    now = time.time_ns()
    doc = {"streams": [{"stream": lab, "values": [[str(now + i), ln] for i, ln in enumerate(lines)]}
                       for lab, lines in streams]}
    return relay.post(job, "/loki/api/v1/push", orjson.dumps(doc), {"Content-Type": "application/json"})


@pytest.fixture
def inproc() -> Iterator[Any]:
    """inproc(config) -> (the relay in-process, its Loki)."""
    made: list[InProcessRelay] = []

    def make(config: dict[str, Any]) -> tuple[InProcessRelay, Loki]:
        loki = Loki()
        made.append(InProcessRelay(config, loki))
        return made[-1], loki

    yield make
    for relay in made:
        relay.close()


def doc_config(template: str) -> dict[str, Any]:
    return yaml.safe_load(template.format(loki=LOKI, server=9080, push=3500, grpc=3600))


def start_doc_config(tmp: Path, template: str, receiver: Any, start_relay: Any) -> tuple[Any, int]:
    """Server port stays the doc's 9080 in the file: conftest's -server.http-listen-port flag moves it."""
    push = free_port()
    path = tmp / "lambda-promtail.yaml"
    path.write_text(template.format(loki=receiver.url, server=9080, push=push, grpc=free_port()))
    return start_relay(None, f"-config.file={path}", ready=False), push


def test_lambda_promtail_doc_config_with_scrape_level_relabel(tmp_path: Path, receiver: Any, start_relay: Any) -> None:
    rel, push = start_doc_config(tmp_path, LAMBDA_DOC_SCRAPE_LEVEL, receiver, start_relay)
    rel.wait_ready()
    # What lambda-promtail sends for a CloudWatch event and for an ALB log.
    r = jpush(push, [
        ({"__aws_log_type": "cloudwatch", "__aws_cloudwatch_log_group": "/aws/lambda/fn",
          "__aws_cloudwatch_owner": "123456789012"}, ["START RequestId: 1"]),
        ({"__aws_log_type": "s3_lb", "__aws_s3_log_lb": "my-alb", "__aws_s3_log_lb_owner": "123"}, ["GET / 200"]),
    ])
    assert r.status_code == 204, r.text
    entries = receiver.wait_for(2, timeout=5)  # the doc config keeps the default batchwait (1s)
    got = sorted((e["line"], tuple(sorted(e["labels"].items()))) for e in entries)
    assert got == [
        ("GET / 200", (("loadbalancer_name", "my-alb"), ("log_type", "s3_lb"), ("promtail", "lambda-promtail"))),
        ("START RequestId: 1", (("log_group", "/aws/lambda/fn"), ("log_type", "cloudwatch"),
                                ("promtail", "lambda-promtail"))),
    ]
    # positions, grpc_listen_port (twice) are Promtail keys with no meaning here: one warning each.
    log = rel.log()
    for key in ("positions", "server.grpc_listen_port", "scrape_configs[0].loki_push_api.server.grpc_listen_port"):
        assert len([ln for ln in log.splitlines() if f"config key {key} has no effect" in ln]) == 1, (key, log)


def test_lambda_promtail_doc_config_with_nested_relabel(inproc: Any) -> None:
    rel, receiver = inproc(doc_config(LAMBDA_DOC_NESTED))
    labels = {"__aws_cloudwatch_log_group": "/aws/lambda/fn", "__aws_log_type": "cloudwatch"}
    r = ipush(rel, [(labels, ["hi"])], "push1")
    assert r.status_code == 204, r.text
    (e,) = receiver.wait_for(1, timeout=5)
    assert e["labels"] == {"log_group": "/aws/lambda/fn", "promtail": "lambda-promtail"}
    assert e["line"] == "hi"


@pytest.mark.parametrize("template", [LAMBDA_DOC_SCRAPE_LEVEL, LAMBDA_DOC_NESTED], ids=["scrape-level", "nested"])
def test_lambda_promtail_doc_configs_check_syntax(tmp_path: Path, template: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(template.format(loki="http://ip_or_hostname_where_Loki_run:3100/loki/api/v1/push",
                                    server=9080, push=3500, grpc=3600))
    r = subprocess.run([sys.executable, "-m", "relay", "-check-syntax", f"-config.file={path}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr


def test_inert_promtail_keys_accepted_with_one_warning_each(receiver: Any, start_relay: Any) -> None:
    port = free_port()
    cfg = push_config(receiver.url, port)
    cfg["positions"] = {"filename": "/tmp/positions.yaml"}
    cfg["target_config"] = {"sync_period": "10s"}
    cfg["server"] = {"grpc_listen_port": 0, "http_server_write_timeout": "30s"}
    cfg["clients"][0]["enable_http2"] = True
    job = cfg["scrape_configs"][0]
    job["static_configs"] = [{"targets": ["localhost"]}]
    job["loki_push_api"]["server"]["grpc_listen_port"] = 0
    cfg["limits_config"] = {"readline_rate_enabled": False}
    rel = start_relay(cfg)
    keys = ["positions", "target_config", "server.grpc_listen_port", "server.http_server_write_timeout",
            "clients[0].enable_http2", "scrape_configs[0].static_configs",
            "scrape_configs[0].loki_push_api.server.grpc_listen_port", "limits_config.readline_rate_enabled"]
    lines = rel.log().splitlines()
    for key in keys:
        hits = [ln for ln in lines if f"config key {key} has no effect" in ln]
        assert len(hits) == 1, (key, rel.log())
        assert "level=warn" in hits[0]
    assert len([ln for ln in lines if "has no effect" in ln]) == len(keys)
    # And it runs.
    assert jpush(port, [({"app": "a"}, ["x"])]).status_code == 204
    assert [e["line"] for e in receiver.wait_for(1)] == ["x"]


@pytest.mark.parametrize("mutate,path", [
    (lambda c: c.update(wal_dirr="/tmp"), "wal_dirr"),
    (lambda c: c["clients"][0].update(batch_wait="1s"), "clients[0].batch_wait"),
    (lambda c: c["clients"][0].update(backoff_config={"min_period": "1s", "maxretries": 3}),
     "clients[0].backoff_config.maxretries"),
    (lambda c: c["scrape_configs"][0].update(jobname="x"), "scrape_configs[0].jobname"),
    (lambda c: c["scrape_configs"][0]["loki_push_api"].update(use_incoming_timestmp=True),
     "scrape_configs[0].loki_push_api.use_incoming_timestmp"),
    (lambda c: c["scrape_configs"][0]["loki_push_api"]["server"].update(http_listen_adress="0.0.0.0"),
     "scrape_configs[0].loki_push_api.server.http_listen_adress"),
    (lambda c: c.update(limits_config={"max_line_sise": 10}), "limits_config.max_line_sise"),
    (lambda c: c["clients"][0].update(tls_config={"ca_fil": "x"}), "clients[0].tls_config.ca_fil"),
])
def test_unknown_keys_refused_with_path(mutate: Any, path: str) -> None:
    cfg = push_config("http://127.0.0.1:1/loki/api/v1/push", 3999)
    mutate(cfg)
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert f"{path}: unknown configuration key" in str(e.value)


def test_unknown_key_stops_the_relay_with_exit_1(tmp_path: Path) -> None:
    cfg = push_config("http://127.0.0.1:1/loki/api/v1/push", 3999)
    cfg["clients"][0]["batch_wait"] = "1s"
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "relay", f"-config.file={p}"], cwd=ROOT, capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 1
    assert "clients[0].batch_wait: unknown configuration key" in r.stderr, r.stderr


def test_config_example_yaml_passes_check_syntax() -> None:
    r = subprocess.run([sys.executable, "-m", "relay", "-check-syntax", "-config.file=config.example.yaml"],
                       cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "Valid config file!" in r.stdout


def test_config_example_yaml_runs_as_is(tmp_path: Path, receiver: Any, start_relay: Any) -> None:
    """The shipped example, with only its addresses moved to free ports, accepts a push and delivers it."""
    doc = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    doc["clients"][0]["url"] = receiver.url
    ports = []
    for job in doc["scrape_configs"]:
        for kind, block in job.items():
            if isinstance(block, dict) and "server" in block:
                block["server"]["http_listen_port"] = free_port()
                block["server"]["http_listen_address"] = "127.0.0.1"
                ports.append((kind, block["server"]["http_listen_port"]))
    rel = start_relay(doc)
    kind, port = next(p for p in ports if p[0] == "loki_push_api")
    assert jpush(port, [({"app": "example"}, ["from the example"])]).status_code == 204
    (e,) = receiver.wait_for(1, timeout=5)
    assert e["line"] == "from the example"
    assert e["labels"]["app"] == "example"
    assert rel.proc.poll() is None


def test_deprecated_single_client_key(inproc: Any) -> None:
    cfg = push_config(LOKI, 0)
    cfg["client"] = cfg.pop("clients")[0]
    rel, receiver = inproc(cfg)
    assert ipush(rel, [({"app": "a"}, ["single"])]).status_code == 204
    assert [e["line"] for e in receiver.wait_for(1)] == ["single"]


def test_limits_config_max_line_size_truncate(inproc: Any) -> None:
    cfg = push_config(LOKI, 0)
    cfg["limits_config"] = {"max_line_size": 10, "max_line_size_truncate": True}
    rel, receiver = inproc(cfg)
    assert ipush(rel, [({"app": "a"}, ["0123456789abcdef", "short"])]).status_code == 204
    assert [e["line"] for e in receiver.wait_for(2)] == ["0123456789", "short"]


def test_env_not_expanded_without_flag(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("clients:\n  - url: ${LOKI_URL_FOR_TEST:-http://localhost:3100/loki/api/v1/push}\n")
    env = {**os.environ}
    r = subprocess.run([sys.executable, "-m", "relay", "-check-syntax", f"-config.file={p}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=20, env=env)
    assert r.returncode == 1 and "clients[0].url" in r.stderr
    r = subprocess.run([sys.executable, "-m", "relay", "-check-syntax", "-config.expand-env", f"-config.file={p}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=20, env=env)
    assert r.returncode == 0, r.stderr
