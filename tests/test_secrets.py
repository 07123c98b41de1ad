"""Issue 9, item 7: credentials never printed: not by -print-config-stderr, not by a dependency's debug log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import orjson
import yaml

from relay.config import ClientConfig
from relay.sink.client import LokiClient
from tests.conftest import ROOT, RelayProcess, free_port
from tests.loki_receiver import Receiver


def test_print_config_masks_proxy_url_credentials(tmp_path: Path) -> None:
    doc = {
        "clients": [{"url": "http://127.0.0.1:1/loki/api/v1/push", "proxy_url": "http://pxuser:proxy-secret-555@proxy:3128"}],
        "scrape_configs": [{"job_name": "push", "loki_push_api": {"server": {"http_listen_port": free_port()}}}],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    r = subprocess.run([sys.executable, "-m", "relay", "-check-syntax", "-print-config-stderr", f"-config.file={path}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "proxy-secret-555" not in r.stderr + r.stdout
    printed = yaml.safe_load(r.stderr[r.stderr.index("server:"):])
    assert printed["clients"][0]["proxy_url"] == "http://pxuser:<secret>@proxy:3128"


def test_client_error_text_never_carries_its_credentials() -> None:
    cfg = ClientConfig(url="http://u:url-secret-1@127.0.0.1:1/push", proxy_url="http://p:proxy-secret-2@127.0.0.1:1",
                       basic_auth=("x", "basic-secret-3"))
    client = LokiClient(cfg, transport=lambda *_: None)  # type: ignore[arg-type,return-value]
    text = client._scrub("ProxyError: http://p:proxy-secret-2@127.0.0.1:1 url-secret-1 basic-secret-3")
    assert "secret" not in text.replace("<secret>", "")


SESSION_TOKEN = "st-debug-secret-7777777"
SECRET_KEY = "sak-debug-secret-6666666"
PASSWORD = "basic-debug-secret-8888888"


def test_debug_logs_carry_no_s3_session_token_and_no_basic_auth_password(tmp_path: Path) -> None:
    from moto.server import ThreadedMotoServer

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    rx = Receiver.start()
    try:
        endpoint = f"http://127.0.0.1:{moto_port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        s3.create_bucket(Bucket="logs")
        s3.put_object(Bucket="logs", Key="misc/app.txt", Body=b"line from s3\n")
        push_port, aws_port = free_port(), free_port()
        cfg: dict[str, Any] = {
            "clients": [{"url": rx.url, "batchwait": "50ms", "basic_auth": {"username": "u", "password": PASSWORD}}],
            "scrape_configs": [
                {"job_name": "push", "loki_push_api": {"server": {"http_listen_address": "127.0.0.1",
                                                                   "http_listen_port": push_port}}},
                {"job_name": "aws", "aws_lambda": {
                    "server": {"http_listen_address": "127.0.0.1", "http_listen_port": aws_port},
                    "labels": {"job": "aws"},
                    "s3": {"endpoint_url": endpoint, "force_path_style": True, "region": "us-east-1",
                           "access_key_id": "AKIDDEBUGTEST", "secret_access_key": SECRET_KEY,
                           "session_token": SESSION_TOKEN}}},
            ],
        }
        env = {"AWS_EC2_METADATA_DISABLED": "true"}
        relay = RelayProcess(tmp_path, cfg, ["-log.level=debug"], env).wait_ready()
        try:
            event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "us-east-1",
                                  "s3": {"bucket": {"name": "logs"}, "object": {"key": "misc/app.txt"}}}]}
            r = httpx.post(f"http://127.0.0.1:{aws_port}/awslambda/api/v1/push", content=orjson.dumps(event),
                           headers={"Content-Type": "application/json"}, timeout=30)
            assert r.status_code == 200, r.text
            body = orjson.dumps({"streams": [{"stream": {"job": "p"}, "values": [[str(time.time_ns()), "pushed"]]}]})
            r = httpx.post(f"http://127.0.0.1:{push_port}/loki/api/v1/push", content=body,
                           headers={"Content-Type": "application/json"}, timeout=10)
            assert r.status_code == 204
            assert sorted(e["line"] for e in rx.wait_for(2)) == ["line from s3", "pushed"]
            # The S3 request did carry the token (moto saw it), so the SDK had it to log.
            assert any(req["headers"].get("authorization", "").startswith("Basic ") for req in rx.requests())
        finally:
            relay.stop()
        log = relay.log()
        assert "level=debug" in log and "sent batch" in log  # debug logging was on
        for secret in (SESSION_TOKEN, SECRET_KEY, PASSWORD):
            assert secret not in log
    finally:
        rx.stop()
        moto.stop()
