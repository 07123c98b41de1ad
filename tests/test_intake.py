"""Issue 9, items 5 and 6 over HTTP: what Loki refuses is refused at intake with 400 and a reason;
what Loki takes (numeric label values) is taken as Loki takes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from conftest import RelayProcess, free_port
from loki_receiver import Receiver


class Env:
    def __init__(self, rel: RelayProcess, rx: Receiver, push: int, aws: int, firehose: int) -> None:
        self.rel, self.rx, self.push, self.aws, self.firehose = rel, rx, push, aws, firehose

    def post_push(self, body: bytes, path: str = "/loki/api/v1/push", **headers: str) -> httpx.Response:
        return httpx.post(f"http://127.0.0.1:{self.push}{path}", content=body,
                          headers={"Content-Type": "application/json", **headers}, timeout=10)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    rx = Receiver.start()
    push, aws, firehose = free_port(), free_port(), free_port()

    def server(port: int) -> dict[str, Any]:
        return {"server": {"http_listen_address": "127.0.0.1", "http_listen_port": port}}

    config = {
        "clients": [{"url": rx.url, "batchwait": "100ms"}],
        "scrape_configs": [
            {"job_name": "push", "loki_push_api": server(push)},
            {"job_name": "aws", "aws_lambda": server(aws)},
            {"job_name": "firehose", "aws_firehose": server(firehose)},
        ],
    }
    rel = RelayProcess(tmp_path_factory.mktemp("relay"), config, [], None)
    try:
        rel.wait_ready()
        yield Env(rel, rx, push, aws, firehose)
    finally:
        rel.stop()
        rx.stop()


# ---- item 5: legacy timestamps out of range ----------------------------------------------------------


@pytest.mark.parametrize("ts,reason", [
    ("2024-13-01T00:00:00Z", "expected RFC3339"),
    ("0000-01-01T00:00:00Z", "expected RFC3339"),
    ("2024-01-01T00:00:00+99:99", "expected RFC3339"),
    ("9999-12-31T23:59:59Z", "out of range"),
    ("1969-12-31T23:59:59Z", "out of range"),
])
def test_legacy_timestamp_out_of_range_is_400_with_the_reason(env: Env, ts: str, reason: str) -> None:
    env.rx.reset()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = orjson.dumps({"streams": [
        {"labels": '{app="bad"}', "entries": [{"ts": ts, "line": "refused"}]},
        {"labels": '{app="good"}', "entries": [{"ts": now, "line": "kept"}]},
    ]})
    r = env.post_push(body, "/api/prom/push")
    assert r.status_code == 400, r.text
    assert ts[:20] in r.text and reason in r.text
    assert [e["line"] for e in env.rx.wait_for(1)] == ["kept"]  # the valid stream is still delivered
