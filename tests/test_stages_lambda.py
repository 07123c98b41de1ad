"""Issue 10: lambda-promtail's LOKI_STAGE_CONFIGS and PIPELINE_TIMEOUT in the in-process handler."""

from __future__ import annotations

import orjson
import pytest

from relay.aws import lambda_handler
from relay.aws.lambda_handler import SettingsError, load_settings
from tests.loki_receiver import Receiver
from tests.payloads import ACCOUNT, load
from tests.test_aws_handler import env  # noqa: F401  (fixture)
from tests.test_aws_lambda import moto, rx  # noqa: F401  (fixtures)


def test_stage_configs_run_on_each_entry(env: pytest.MonkeyPatch, rx: Receiver) -> None:  # noqa: F811
    env.setenv("LOKI_STAGE_CONFIGS", orjson.dumps([
        {"drop": {"expression": "1001"}},
        {"static_labels": {"stage": "yes"}},
        {"structured_metadata": {"owner": None}},
        {"tenant": {"value": "from-stage"}},
    ]).decode())
    doc = load("events/cloudwatch-logs.json")
    assert lambda_handler.handler(doc, None) is None
    entries = rx.entries()
    assert [e["line"] for e in entries] == ["GET /orders/1002 200 9ms", "POST /orders 500 230ms: db timeout"]
    assert entries[0]["tenant"] == "from-stage"
    assert entries[0]["labels"] == {"env": "test", "log_type": "cloudwatch", "log_group": "/ecs/orders-api",
                                    "stage": "yes"}
    assert dict(entries[0]["metadata"]) == {"owner": ACCOUNT}


def test_pipeline_timeout_bounds_a_limit_stage(env: pytest.MonkeyPatch, rx: Receiver) -> None:  # noqa: F811
    env.setenv("LOKI_STAGE_CONFIGS", '[{"limit": {"rate": 1, "burst": 1}}]')
    env.setenv("PIPELINE_TIMEOUT", "100ms")
    doc = load("events/cloudwatch-logs.json")
    lambda_handler.handler(doc, None)
    # the later events would wait a second for a token: longer than PIPELINE_TIMEOUT, so dropped
    assert [e["line"] for e in rx.entries()] == ["GET /orders/1001 200 12ms"]


@pytest.mark.parametrize(
    ("env_vars", "message"),
    [
        ({"LOKI_STAGE_CONFIGS": "[{"}, "failed to parse LOKI_STAGE_CONFIGS"),
        ({"LOKI_STAGE_CONFIGS": '{"labels": {}}'}, "failed to parse LOKI_STAGE_CONFIGS: expected a JSON array"),
        ({"LOKI_STAGE_CONFIGS": '[{"invalid": {}}]'}, r"LOKI_STAGE_CONFIGS\[0\] \(invalid\): Unknown stage type: invalid"),
        ({"LOKI_STAGE_CONFIGS": '[{"labels": {}}, {"tenant": {}}]'},
         r"LOKI_STAGE_CONFIGS\[1\] \(tenant\): label, source or value config are required"),
        ({"PIPELINE_TIMEOUT": "1"}, "PIPELINE_TIMEOUT must be a Go duration"),
        ({"PIPELINE_TIMEOUT": "-1s"}, "PIPELINE_TIMEOUT must be positive"),
    ],
)
def test_invalid_stage_settings(env_vars: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({"WRITE_ADDRESS": "http://loki:3100/loki/api/v1/push", **env_vars})


def test_stage_settings_defaults() -> None:
    s = load_settings({"WRITE_ADDRESS": "http://loki:3100/loki/api/v1/push"})
    assert s.pipeline is None and s.pipeline_timeout == 1.0
    s = load_settings({"WRITE_ADDRESS": "http://loki:3100/loki/api/v1/push", "PIPELINE_TIMEOUT": "250ms",
                       "LOKI_STAGE_CONFIGS": '[{"labels": {"level": ""}}]'})
    assert s.pipeline is not None and s.pipeline_timeout == 0.25
