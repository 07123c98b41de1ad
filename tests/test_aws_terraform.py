"""Issue 12: the Terraform modules in deploy/aws/terraform parse, declare exactly the variables they
use, keep lambda-promtail's variable names, and hand the function and the relay the settings they read.
No Terraform binary or provider is needed: python-hcl2 parses, the rest is read from the text."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest

from relay.config import ServerConfig
from tests.conftest import ROOT

TF = ROOT / "deploy" / "aws" / "terraform"
MODULES = [TF, TF / "relay-ecs"]

# lambda-promtail's module variables (its variables.tf), which must keep their names here.
LAMBDA_PROMTAIL_VARIABLES = {
    "name", "write_address", "username", "username_secret_arn", "username_parameter_arn",
    "password", "password_secret_arn", "password_parameter_arn",
    "bearer_token", "bearer_token_secret_arn", "bearer_token_parameter_arn",
    "tenant_id", "keep_stream", "extra_labels", "omit_extra_labels_prefix", "drop_labels",
    "relabel_configs", "batch_size", "print_log_line", "skip_tls_verify", "log_group_names",
    "bucket_names", "filter_prefix", "filter_suffix", "kinesis_stream_name", "sqs_enabled",
    "sqs_queue_name_prefix", "lambda_vpc_subnets", "lambda_vpc_security_groups", "kms_key_arn",
    "lambda_promtail_image", "lambda_promtail_binary_bucket", "lambda_promtail_binary_key",
}


def tf_files(module: Path) -> list[Path]:
    files = sorted(module.glob("*.tf"))
    assert files, f"no .tf files in {module}"
    return files


def parsed(module: Path) -> list[dict[str, Any]]:
    out = []
    for f in tf_files(module):
        with f.open() as fh:
            out.append(hcl2.load(fh))
    return out


def declared_variables(module: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for doc in parsed(module):
        for block in doc.get("variable", []):
            for quoted, body in block.items():
                name = quoted.strip('"')  # python-hcl2 keeps the label's quotes
                assert name not in out, f"variable {name} declared twice in {module}"
                out[name] = body
    return out


def code(module: Path) -> str:
    # Comments removed, so a name mentioned only in a comment does not count as used.
    text = "\n".join(f.read_text() for f in tf_files(module))
    return re.sub(r"(?m)^\s*#.*$", "", text)


def used(module: Path, kind: str) -> set[str]:
    return set(re.findall(rf"\b{kind}\.([A-Za-z_][A-Za-z0-9_]*)", code(module)))


def declared_locals(module: Path) -> set[str]:
    names: set[str] = set()
    for doc in parsed(module):
        for block in doc.get("locals", []):
            names |= {k for k in block if not k.startswith("__")}  # python-hcl2's own __is_block__ etc.
    return names


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_every_file_parses_and_every_variable_declared_is_used_and_vice_versa(module: Path) -> None:
    declared = set(declared_variables(module))
    use = used(module, "var")
    assert use - declared == set(), f"used but not declared in {module.name}"
    assert declared - use == set(), f"declared but never used in {module.name}"
    # Every variable says what it is for.
    for name, body in declared_variables(module).items():
        assert body.get("description"), f"variable {name} has no description"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_every_local_used_is_defined_and_every_defined_is_used(module: Path) -> None:
    defined, use = declared_locals(module), used(module, "local")
    assert use - defined == set()
    assert defined - use == set()


def test_lambda_promtail_variable_names_are_all_there_with_their_types() -> None:
    declared = declared_variables(TF)
    missing = LAMBDA_PROMTAIL_VARIABLES - set(declared)
    assert missing == set()
    # Same types as lambda-promtail's, so its -var values parse the same way.
    sets = {"log_group_names", "bucket_names", "kinesis_stream_name"}
    lists = {"lambda_vpc_subnets", "lambda_vpc_security_groups"}
    bools = {"omit_extra_labels_prefix", "sqs_enabled"}
    for name in LAMBDA_PROMTAIL_VARIABLES:
        t = str(declared[name]["type"])
        want = "set(string)" if name in sets else "list(string)" if name in lists else "bool" if name in bools else "string"
        assert t.strip("${}") == want, f"{name}: {t}"


def environment_block(name: str) -> dict[str, str]:
    for doc in parsed(TF):
        for block in doc.get("locals", []):
            if name in block:
                return block[name]
    raise AssertionError(f"local {name} not found")


def test_direct_environment_is_lambda_promtails_and_the_handler_reads_each_variable() -> None:
    env = environment_block("direct_environment")
    assert set(env) == {
        "WRITE_ADDRESS", "USERNAME", "PASSWORD", "BEARER_TOKEN", "TENANT_ID", "KEEP_STREAM", "BATCH_SIZE",
        "EXTRA_LABELS", "OMIT_EXTRA_LABELS_PREFIX", "DROP_LABELS", "RELABEL_CONFIGS", "SKIP_TLS_VERIFY",
        "PRINT_LOG_LINE", "LOKI_STAGE_CONFIGS", "PIPELINE_TIMEOUT",
    }
    handler = (ROOT / "relay" / "aws" / "lambda_handler.py").read_text()
    for key in env:
        assert f'"{key}"' in handler, f"relay/aws/lambda_handler.py never reads {key}"
    # Each value comes from the lambda-promtail variable of the same name.
    for key, value in env.items():
        assert f"var.{key.lower()}" in str(value), f"{key} = {value}"


def test_forwarder_environment_is_what_the_forwarder_reads() -> None:
    env = environment_block("forwarder_environment")
    forwarder = (ROOT / "relay" / "aws" / "forwarder.py").read_text()
    read = set(re.findall(r'"(RELAY_[A-Z_]+)"', forwarder))
    assert set(env) <= read, f"set but never read by the forwarder: {set(env) - read}"
    assert "RELAY_URL" in env


def test_forwarder_source_path_exists() -> None:
    src = re.search(r'source_file\s*=\s*"\$\{path\.module\}/([^"]+)"', code(TF))
    assert src, "archive_file.forwarder has no source_file"
    assert (TF / src.group(1)).resolve() == (ROOT / "relay" / "aws" / "forwarder.py").resolve()


def test_sqs_trigger_reports_batch_item_failures_and_queue_has_a_dead_letter_queue() -> None:
    text = code(TF)
    mapping = re.search(r'resource "aws_lambda_event_source_mapping" "sqs" \{(.*?)\n\}', text, re.S)
    assert mapping and '"ReportBatchItemFailures"' in mapping.group(1)
    main = re.search(r'resource "aws_sqs_queue" "main" \{(.*?)\n\}', text, re.S)
    assert main and "deadLetterTargetArn = aws_sqs_queue.dead_letter[0].arn" in main.group(1)


RELAY_ECS_CONFIG = ROOT / "deploy" / "aws" / "relay-ecs.yaml"


def test_relay_ecs_config_passes_check_syntax_with_the_tasks_environment() -> None:
    """The config the ECS task runs, with the variables the task definition sets, is valid."""
    text = code(TF / "relay-ecs")
    provided = set(re.findall(r'name\s*=\s*"([A-Z_]+)"', text))
    referenced = set(re.findall(r"\$\{([A-Z_]+)", RELAY_ECS_CONFIG.read_text()))
    referenced |= {"LOKI_USERNAME", "LOKI_PASSWORD"}  # the basic_auth block the module adds
    assert referenced - provided == set(), "the config reads variables the task definition does not set"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOKI_", "RELAY_", "FIREHOSE_"))}
    env.update(LOKI_URL="https://loki.example.test/loki/api/v1/push", FIREHOSE_ACCESS_KEY="k")
    out = subprocess.run(
        [sys.executable, "-m", "relay", f"-config.file={RELAY_ECS_CONFIG}", "-config.expand-env", "-check-syntax"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_relay_ecs_timings_follow_the_drain() -> None:
    text = code(TF / "relay-ecs")
    assert "deregistration_delay = local.drain_seconds" in text
    assert re.search(r"drain_seconds\s*=\s*var\.shutdown_delay_seconds \+ var\.graceful_shutdown_timeout_seconds", text)
    assert re.search(r"stop_timeout\s*=\s*min\(local\.drain_seconds \+ 10, 120\)", text)
    assert "stopTimeout = local.stop_timeout" in text
    # The defaults are the relay's own (relay/config.py), in the module and in the config's fallbacks.
    server = ServerConfig()
    declared = declared_variables(TF / "relay-ecs")
    assert declared["shutdown_delay_seconds"]["default"] == server.shutdown_delay
    assert declared["graceful_shutdown_timeout_seconds"]["default"] == server.graceful_shutdown_timeout
    config = RELAY_ECS_CONFIG.read_text()
    assert f"${{RELAY_SHUTDOWN_DELAY:-{server.shutdown_delay:g}s}}" in config
    assert f"${{RELAY_GRACEFUL_SHUTDOWN_TIMEOUT:-{server.graceful_shutdown_timeout:g}s}}" in config
    assert 'name = "RELAY_SHUTDOWN_DELAY", value = "${var.shutdown_delay_seconds}s"' in text
    assert 'name = "RELAY_GRACEFUL_SHUTDOWN_TIMEOUT", value = "${var.graceful_shutdown_timeout_seconds}s"' in text
    assert re.search(r'path\s*=\s*"/ready"', text)
    assert re.search(r'protocol\s*=\s*"HTTPS"', text) and "certificate_arn   = var.certificate_arn" in text
    assert '"ECSServiceAverageCPUUtilization"' in text
