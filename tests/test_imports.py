"""What importing a module drags in, checked in a fresh interpreter (sys.modules), not assumed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ("fastapi", "starlette", "uvicorn", "pydantic")


def loaded(module: str, of: tuple[str, ...]) -> list[str]:
    code = (f"import sys, json, {module}\n"
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(of)!r}))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    return list(json.loads(out.stdout))


def test_the_lambda_function_loads_no_web_framework() -> None:
    assert loaded("relay.aws.lambda_handler", WEB) == []


def test_the_lambda_function_loads_no_metrics_library() -> None:
    # The zip leaves prometheus_client out: nothing scrapes a Lambda function.
    assert loaded("relay.aws.lambda_handler", ("prometheus_client",)) == []


def test_stage_modules_load_when_a_pipeline_first_uses_them() -> None:
    code = ("import sys, relay.pipeline.pipeline as p\n"
            "before = 'relay.pipeline.stages.json' in sys.modules\n"
            "p.build([{'json': {'expressions': {'a': 'a'}}}], job='t')\n"
            "print(before, 'relay.pipeline.stages.json' in sys.modules, 'relay.pipeline.stages.metrics' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "True", "False"]


def test_the_lambda_function_loads_no_boto3_until_it_reads_s3() -> None:
    assert loaded("relay.aws.lambda_handler", ("boto3", "botocore")) == []


@pytest.mark.parametrize("module", [
    "relay.sources.push", "relay.sources.content", "relay.aws.events", "relay.aws.firehose", "relay.aws.s3logs",
    "relay.aws.cloudwatch", "relay.aws.s3", "relay.aws.sqs", "relay.config", "relay.pipeline",
])
def test_decoders_and_config_load_no_web_framework(module: str) -> None:
    assert loaded(module, WEB) == []


def test_the_http_routes_do_load_one() -> None:
    # The check above can fail: the routes module is where the framework comes in.
    assert "starlette" in loaded("relay.sources.http.push", WEB)
