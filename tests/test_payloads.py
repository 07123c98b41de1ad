"""The project's own sample payloads (tests/payloads): current with their generator, and covering
every log type and event kind the decoders know."""

from __future__ import annotations

import subprocess
import sys

from relay.aws import s3logs
from relay.aws.events import CLOUDWATCH, EVENTBRIDGE, KINESIS, S3, S3_TEST, SNS, SQS, parse_event
from tests import payloads
from tests.payloads import KEYS, make


def test_committed_files_are_what_make_py_writes() -> None:
    for name, data in make.everything().items():
        assert payloads.read(name) == data, f"tests/payloads/{name}: run python tests/payloads/make.py"
    on_disk = {p.relative_to(payloads.HERE).as_posix() for p in payloads.HERE.rglob("*")
               if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts}
    assert on_disk == set(make.everything())  # nothing stale left behind


def test_make_check_exits_zero() -> None:
    r = subprocess.run([sys.executable, str(payloads.HERE / "make.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_s3_log_type_has_a_payload() -> None:
    types = {s3logs.classify("b", key).log_type for key in KEYS.values()}
    assert types == set(s3logs.LOG_TYPES)
    assert s3logs.classify("b", KEYS["cloudtrail_digest"]).skip


def test_every_lambda_event_kind_has_a_payload() -> None:
    kinds = {parse_event(payloads.load(f"events/{p.name}"), receive_ns=0).kind
             for p in sorted((payloads.HERE / "events").glob("*.json")) if p.name != "cloudwatch-payload.json"}
    assert kinds == {CLOUDWATCH, KINESIS, S3, S3_TEST, SNS, SQS, EVENTBRIDGE}
