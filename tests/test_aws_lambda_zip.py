"""Issue 12: the function zip of deploy/aws/lambda/build.py, unpacked, on a plain Python that has
boto3 and nothing else (as the Lambda runtime), handles a CloudWatch Logs event, an S3 event (the
object in moto's server) and an SQS batch, and pushes the entries to the Loki stand-in.

The zip is built for this machine's CPython and architecture (the same build command, other
--python/--arch), so its compiled wheels load here. Building takes PyPI."""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import os
import platform
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import ROOT, free_port
from tests.loki_receiver import Receiver

BUILD = ROOT / "deploy" / "aws" / "lambda" / "build.py"
RUNNER = Path(__file__).parent / "lambda_zip" / "run_events.py"
ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
# boto3 and its own dependencies: what the Lambda Python runtime brings.
RUNTIME = ["boto3", "botocore", "jmespath", "s3transfer", "dateutil", "six", "urllib3"]
WEB = {"fastapi", "starlette", "uvicorn", "pydantic", "pydantic_core", "prometheus_client"}
BUCKET = "zip-test-logs"


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("lambda-zip")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([sys.executable, str(BUILD), "--arch", ARCH, "--python", python, "--out", str(tmp / "dist")],
                   check=True, timeout=600, capture_output=True)
    zpath = tmp / "dist" / f"loki-relay-lambda-{ARCH}.zip"
    task = tmp / "task"
    with zipfile.ZipFile(zpath) as z:
        z.extractall(task)
    runtime = tmp / "runtime"
    runtime.mkdir()
    for name in RUNTIME:
        spec = importlib.util.find_spec(name)
        assert spec and spec.origin, name
        src = Path(spec.origin)
        src = src.parent if src.name == "__init__.py" else src
        (runtime / src.name).symlink_to(src)
    return {"zip": zpath, "task": task, "runtime": runtime}


@pytest.fixture(scope="module")
def loki() -> Iterator[Receiver]:
    r = Receiver.start(no_reject_old_samples=True)
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="app/one.log", Body=b"zip line one\nzip line two\n")
        s3.put_object(Bucket=BUCKET, Key="app/two.log.gz", Body=gzip.compress(b"queued line\n"))
        yield url
    finally:
        server.stop()


def s3_record(key: str) -> dict[str, Any]:
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2024-03-01T10:00:00Z", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"}, "object": {"key": key, "size": 1}}}


def events() -> list[Any]:
    cw = {"messageType": "DATA_MESSAGE", "owner": "210987654321", "logGroup": "/zip/group", "logStream": "s1",
          "subscriptionFilters": ["f"], "logEvents": [
              {"id": "1", "timestamp": 1709287200000, "message": "cw first"},
              {"id": "2", "timestamp": 1709287200001, "message": "cw second"}]}
    sqs = {"Records": [
        {"messageId": f"msg-{i}", "receiptHandle": "r", "body": json.dumps({"Records": [s3_record(key)]}),
         "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:210987654321:q", "awsRegion": "us-east-1",
         "attributes": {"SentTimestamp": "1709287200000"}}
        for i, key in enumerate(["app/two.log.gz", "app/one.log"])]}
    return [
        {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(cw).encode())).decode()}},
        {"Records": [s3_record("app/one.log")]},
        sqs,
    ]


def test_zip_holds_no_web_server_and_no_boto3_and_fits(unpacked: dict[str, Path]) -> None:
    with zipfile.ZipFile(unpacked["zip"]) as z:
        tops = {n.split("/")[0] for n in z.namelist()}
    assert tops & (WEB | {"boto3", "botocore"}) == set()
    assert {"relay", "httpx", "yaml", "snappy", "re2", "google"} <= tops
    assert unpacked["zip"].stat().st_size <= 10 * 1000 * 1000


def run_unpacked(unpacked: dict[str, Path], evs: list[Any], tmp_path: Path, **settings: str) -> dict[str, Any]:
    """The handler on each event, in a fresh `python -S` whose path is the zip and boto3 only."""
    evfile = tmp_path / "events.json"
    evfile.write_text(json.dumps(evs))
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(PYTHONPATH=os.pathsep.join([str(unpacked["task"]), str(unpacked["runtime"])]),
               PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1",  # /var/task is read-only
               PRINT_LOG_LINE="false", AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", **settings)
    proc = subprocess.run([sys.executable, "-S", str(RUNNER), str(evfile)], env=env, cwd=unpacked["task"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    assert out["outside"] == [], "modules came from outside the zip, boto3 and the standard library"
    assert out["error"] is None, out["error"]
    assert set(out["loaded"]) & WEB == set()
    assert out["from_source"] == [], "modules of the zip without bytecode in it: compiled at every cold start"
    return out


def test_unpacked_zip_handles_cloudwatch_s3_and_sqs_with_only_boto3(
        unpacked: dict[str, Path], loki: Receiver, s3_url: str, tmp_path: Path) -> None:
    loki.reset()
    out = run_unpacked(unpacked, events(), tmp_path, WRITE_ADDRESS=loki.url, EXTRA_LABELS="via,zip",
                       AWS_ENDPOINT_URL_S3=s3_url)
    assert out["results"][0] is None and out["results"][1] is None
    assert out["results"][2] == {"batchItemFailures": []}

    got = sorted((e["line"], e["labels"].get("via")) for e in loki.entries())
    assert got == sorted([("cw first", "zip"), ("cw second", "zip"), ("zip line one", "zip"), ("zip line two", "zip"),
                          ("zip line one", "zip"), ("zip line two", "zip"), ("queued line", "zip")])
    cw = [e for e in loki.entries() if e["line"].startswith("cw ")]
    assert [e["ts"] for e in cw] == [1709287200000 * 10**6, 1709287200001 * 10**6]
    assert cw[0]["labels"]["log_group"] == "/zip/group"


def test_unpacked_zip_runs_loki_stage_configs(unpacked: dict[str, Path], loki: Receiver, tmp_path: Path) -> None:
    """LOKI_STAGE_CONFIGS (json, labels, two drops) built and run from the zip alone."""
    loki.reset()
    stages = [
        {"json": {"expressions": {"level": "lvl", "path": "req.path"}}},
        {"labels": {"level": ""}},
        {"drop": {"source": "level", "value": "debug"}},
        {"drop": {"source": "path", "expression": "^/health"}},
    ]
    lines = [
        {"lvl": "info", "req": {"path": "/api/orders"}, "msg": "order placed"},
        {"lvl": "debug", "req": {"path": "/api/orders"}, "msg": "cache miss"},
        {"lvl": "info", "req": {"path": "/healthz"}, "msg": "ok"},
        {"lvl": "error", "req": {"path": "/api/pay"}, "msg": "card declined"},
    ]
    cw = {"messageType": "DATA_MESSAGE", "owner": "210987654321", "logGroup": "/zip/stages", "logStream": "s1",
          "subscriptionFilters": ["f"], "logEvents": [
              {"id": str(i), "timestamp": 1709287300000 + i, "message": json.dumps(line)}
              for i, line in enumerate(lines)]}
    event = {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(cw).encode())).decode()}}
    out = run_unpacked(unpacked, [event], tmp_path, WRITE_ADDRESS=loki.url,
                       LOKI_STAGE_CONFIGS=json.dumps(stages), PIPELINE_TIMEOUT="2s")
    assert out["results"] == [None]
    got = sorted((json.loads(e["line"])["msg"], e["labels"].get("level"), e["labels"]["log_group"])
                 for e in loki.entries())
    assert got == [("card declined", "error", "/zip/stages"), ("order placed", "info", "/zip/stages")]
