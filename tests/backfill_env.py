"""moto's server (S3 and CloudWatch Logs on 127.0.0.1) and a runner for `loki-relay backfill`, for the tests."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import ROOT, free_port


class Moto:
    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1",
                    "AWS_ENDPOINT_URL_S3": self.url, "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": self.url}
        self.s3 = self.client("s3")
        self.logs = self.client("logs")

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name="eu-west-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing")

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(self.url + "/moto-api/reset", method="POST")).read()

    def put(self, bucket: str, objects: list[tuple[str, bytes, list[str]]]) -> None:
        for key, body, _ in objects:
            self.s3.put_object(Bucket=bucket, Key=key, Body=body)


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    m = Moto()
    try:
        yield m
    finally:
        m.server.stop()


def backfill_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "relay", "backfill", *args]


def run_backfill(moto: Moto, tmp: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the command to its end, with the checkpoint folder under tmp."""
    return subprocess.run(backfill_cmd(*args), cwd=ROOT, env=env(moto, tmp), capture_output=True, text=True,
                          timeout=timeout)


def env(moto: Moto, tmp: Path) -> dict[str, str]:
    return {**os.environ, **moto.env, "XDG_CACHE_HOME": str(tmp / "cache")}


def client_config(tmp: Path, url: str, **client: Any) -> str:
    """A config file with one client pointed at `url`, fast retries; returns -config.file=..."""
    import yaml

    doc = {"clients": [{"url": url, "backoff_config": {"min_period": "50ms", "max_period": "2s", "max_retries": 5},
                        **client}],
           "scrape_configs": [{"job_name": "aws", "aws_lambda": {"labels": {"job": "aws"}}}]}
    path = tmp / "relay.yaml"
    path.write_text(yaml.safe_dump(doc))
    return f"-config.file={path}"
