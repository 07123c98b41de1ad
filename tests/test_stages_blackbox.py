"""Issue 10: pipeline_stages through each job kind's HTTP endpoint, checked at a Loki stand-in."""

from __future__ import annotations

import base64
import gzip
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.conftest import ROOT, free_port, push_config
from tests.loki_receiver import Receiver, encode_push


def jpush(port: int, streams: list[tuple[dict[str, str], list[list[Any]]]], headers: dict[str, str] | None = None
          ) -> httpx.Response:
    body = orjson.dumps({"streams": [{"stream": s, "values": v} for s, v in streams]})
    return httpx.post(f"http://127.0.0.1:{port}/loki/api/v1/push", content=body,
                      headers={"Content-Type": "application/json", **(headers or {})}, timeout=10)


def settle(receiver: Receiver, n: int, tenant: str | None = None) -> list[dict]:
    receiver.wait_for(n, tenant=tenant)
    time.sleep(0.3)  # anything more than expected would arrive now
    return receiver.entries(tenant)


STAGES: list[dict[str, Any]] = [
    {"static_labels": {"env": "prod", "empty": ""}},
    {"drop": {"expression": "healthcheck", "drop_counter_reason": "health"}},
    {"match": {"selector": '{app="api"} |= "error"', "stages": [{"static_labels": {"level": "error"}}]}},
    {"match": {"selector": '{app="noise"}', "action": "drop"}},
    {"labeldrop": ["pod"]},
    {"structured_metadata": {"trace": "pod_uid"}},
    {"tenant": {"label": "team"}},
]


def test_push_stages_labels_drops_tenant_metadata(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    cfg = push_config(receiver.url, port)
    cfg["scrape_configs"][0]["pipeline_stages"] = STAGES
    rel = start_relay(cfg)
    t0 = time.time_ns()
    r = jpush(port, [
        ({"app": "api", "pod": "p1", "pod_uid": "u-1"}, [[str(t0), "GET / error 500"], [str(t0 + 1), "GET / 200"],
                                                         [str(t0 + 2), "GET /healthcheck 200"]]),
        ({"app": "noise"}, [[str(t0 + 3), "chatter"]]),
        ({"app": "web", "team": "blue"}, [[str(t0 + 4), "hello", {"already": "here"}]]),
    ])
    assert r.status_code == 204, r.text
    default = settle(receiver, 2, tenant="")
    blue = receiver.entries("blue")
    assert len(blue) == 1
    by_line = {e["line"]: e for e in default}
    assert set(by_line) == {"GET / error 500", "GET / 200"}
    err = by_line["GET / error 500"]
    assert err["labels"] == {"app": "api", "env": "prod", "level": "error"}
    assert dict(err["metadata"]) == {"trace": "u-1"}
    assert by_line["GET / 200"]["labels"] == {"app": "api", "env": "prod"}
    assert blue[0]["labels"] == {"app": "web", "env": "prod", "team": "blue"}
    assert dict(blue[0]["metadata"]) == {"already": "here"}
    assert rel.metric("loki_relay_dropped_entries_total", reason="health", job="push") == 1
    assert rel.metric("loki_relay_dropped_entries_total", reason="match_stage", job="push") == 1
    assert rel.metric("loki_relay_received_entries_total", job="push") == 5


def test_push_protobuf_keeps_incoming_timestamps_and_order(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    cfg = push_config(receiver.url, port, use_incoming_timestamp=True)
    cfg["scrape_configs"][0]["pipeline_stages"] = [{"labelallow": ["app"]}]
    start_relay(cfg)
    t0 = time.time_ns() - 60_000_000_000
    body = encode_push([('{app="a", host="h1"}', [(t0 + i, f"line {i}") for i in range(5)]),
                        ('{app="a", host="h2"}', [(t0 + 10 + i, f"other {i}") for i in range(3)])])
    r = httpx.post(f"http://127.0.0.1:{port}/loki/api/v1/push", content=body,
                   headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert r.status_code == 204, r.text
    got = settle(receiver, 8)
    assert len(got) == 8
    assert [(e["ts"], e["line"]) for e in got] == [(t0 + i, f"line {i}") for i in range(5)] + \
        [(t0 + 10 + i, f"other {i}") for i in range(3)]
    assert all(e["labels"] == {"app": "a"} for e in got)


def test_stage_leaving_no_labels_is_counted(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    cfg = push_config(receiver.url, port)
    cfg["scrape_configs"][0]["pipeline_stages"] = [{"labeldrop": ["app"]}]
    rel = start_relay(cfg)
    assert jpush(port, [({"app": "x"}, [[str(time.time_ns()), "a"]])]).status_code == 204
    end = time.monotonic() + 5
    while rel.metric("loki_relay_dropped_entries_total", reason="no_labels") < 1 and time.monotonic() < end:
        time.sleep(0.05)
    assert rel.metric("loki_relay_dropped_entries_total", reason="no_labels", job="push") == 1
    assert receiver.entries() == []


def test_invalid_stage_refused_at_start_and_by_check_syntax(tmp_path: Path, start_relay: Any) -> None:
    cfg = push_config("http://127.0.0.1:9/loki/api/v1/push", free_port())
    cfg["scrape_configs"][0]["pipeline_stages"] = [{"labels": {"a": ""}}, {"drop": {"value": "x", "longer_than": "1KB"}}]
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    want = 'job "push" pipeline_stages[1] (drop): drop stage config must contain `source` if `value` is specified'
    check = subprocess.run([sys.executable, "-m", "relay", f"-config.file={path}", "-check-syntax"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 1
    assert want in check.stderr
    rel = start_relay(cfg, ready=False)
    assert rel.proc.wait(30) == 1
    assert want in rel.log()


def test_aws_lambda_job_runs_stages(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    cfg = {
        "clients": [{"url": receiver.url, "batchwait": "100ms"}],
        "scrape_configs": [{
            "job_name": "lambda",
            "aws_lambda": {"server": {"http_listen_address": "127.0.0.1", "http_listen_port": port}},
            "pipeline_stages": [
                {"drop": {"expression": "^START RequestId"}},
                {"static_labels": {"source": "lambda"}},
                {"tenant": {"value": "aws"}},
            ],
        }],
    }
    start_relay(cfg)
    logs = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/lambda/fn",
            "logStream": "2024/01/01/[$LATEST]abc", "subscriptionFilters": ["f"],
            "logEvents": [{"id": "1", "timestamp": time.time_ns() // 1_000_000, "message": "START RequestId: 1"},
                          {"id": "2", "timestamp": time.time_ns() // 1_000_000, "message": "doing work"}]}
    data = base64.b64encode(gzip.compress(orjson.dumps(logs))).decode()
    r = httpx.post(f"http://127.0.0.1:{port}/awslambda/api/v1/push", json={"awslogs": {"data": data}}, timeout=10)
    assert r.status_code == 200, r.text
    got = settle(receiver, 1, tenant="aws")
    assert [e["line"] for e in got] == ["doing work"]
    assert got[0]["labels"]["source"] == "lambda"
    assert got[0]["labels"]["log_group"] == "/aws/lambda/fn"
    assert receiver.entries("") == []


def test_aws_firehose_job_runs_stages(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    cfg = {
        "clients": [{"url": receiver.url, "batchwait": "100ms"}],
        "scrape_configs": [{
            "job_name": "firehose",
            "aws_firehose": {"server": {"http_listen_address": "127.0.0.1", "http_listen_port": port}},
            "pipeline_stages": [
                {"match": {"selector": '{job="aws_firehose"} !~ "keep"', "action": "drop",
                           "drop_counter_reason": "not_kept"}},
                {"static_labels": {"via": "firehose"}},
            ],
        }],
    }
    rel = start_relay(cfg)
    records = [{"data": base64.b64encode(line.encode()).decode()} for line in ("keep me", "drop me", "keep too")]
    body = {"requestId": "req-1", "timestamp": time.time_ns() // 1_000_000, "records": records}
    r = httpx.post(f"http://127.0.0.1:{port}/awsfirehose/api/v1/push", json=body, timeout=10)
    assert r.status_code == 200, r.text
    got = settle(receiver, 2)
    assert sorted(e["line"] for e in got) == ["keep me", "keep too"]
    assert all(e["labels"]["via"] == "firehose" for e in got)
    assert rel.metric("loki_relay_dropped_entries_total", reason="not_kept", job="firehose") == 1


def multiline_config(receiver: Receiver, port: int, wait: str) -> dict[str, Any]:
    cfg = push_config(receiver.url, port)
    cfg["scrape_configs"][0]["pipeline_stages"] = [
        {"multiline": {"firstline": r"^\d{4}-", "max_wait_time": wait}},
        {"static_labels": {"joined": "yes"}},
    ]
    return cfg


BLOCK = [["2024-05-01 start of a trace"], ["  at frame one"], ["  at frame two"]]


def test_multiline_block_leaves_after_max_wait_time(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    start_relay(multiline_config(receiver, port, "300ms"))
    t0 = time.time_ns()
    values = [[str(t0 + i), v[0]] for i, v in enumerate(BLOCK)]
    assert jpush(port, [({"app": "java"}, values)]).status_code == 204
    time.sleep(0.1)
    assert receiver.entries() == []  # still held: the block may go on
    got = settle(receiver, 1)
    assert [e["line"] for e in got] == ["2024-05-01 start of a trace\n  at frame one\n  at frame two"]
    assert got[0]["labels"] == {"app": "java", "joined": "yes"}


def test_multiline_block_is_flushed_on_shutdown(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    rel = start_relay(multiline_config(receiver, port, "10m"))
    t0 = time.time_ns()
    values = [[str(t0 + i), v[0]] for i, v in enumerate(BLOCK)]
    assert jpush(port, [({"app": "java"}, values)]).status_code == 204
    time.sleep(0.5)
    assert receiver.entries() == []
    assert rel.stop() == 0
    got = receiver.entries()
    assert [e["line"] for e in got] == ["2024-05-01 start of a trace\n  at frame one\n  at frame two"]
    assert got[0]["labels"] == {"app": "java", "joined": "yes"}
