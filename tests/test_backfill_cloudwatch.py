"""`loki-relay backfill cloudwatch://GROUP` against moto's CloudWatch Logs server and the Loki stand-in."""

from __future__ import annotations

import base64
import gzip
import re
import time
from pathlib import Path

import orjson
import pytest

from tests.backfill_env import Moto, client_config, moto, run_backfill  # noqa: F401  (fixture)
from tests.loki_receiver import Receiver

HOUR_MS = 3600 * 1000


def _group(moto: Moto, name: str, streams: dict[str, list[tuple[int, str]]]) -> None:
    moto.logs.create_log_group(logGroupName=name)
    for stream, events in streams.items():
        moto.logs.create_log_stream(logGroupName=name, logStreamName=stream)
        moto.logs.put_log_events(logGroupName=name, logStreamName=stream,
                                 logEvents=[{"timestamp": ts, "message": m} for ts, m in events])


def _subscription_labels(group: str, stream: str, owner: str, keep_stream: bool) -> str:
    """The labels the relay gives the same events delivered by a subscription (aws_lambda job)."""
    from relay.aws.events import parse_event
    from relay.aws.settings import DEFAULT_RULES
    from relay.config import JobConfig, LimitsConfig, ServerConfig
    from relay.pipeline import Processor

    payload = {"messageType": "DATA_MESSAGE", "owner": owner, "logGroup": group, "logStream": stream,
               "subscriptionFilters": ["f"], "logEvents": [{"id": "1", "timestamp": 1, "message": "m"}]}
    event = {"awslogs": {"data": base64.b64encode(gzip.compress(orjson.dumps(payload))).decode()}}
    parsed = parse_event(event, keep_stream=keep_stream, receive_ns=0)
    job = JobConfig(name="aws", kind="aws_lambda", listen=ServerConfig(), labels={"job": "aws"}, use_incoming_timestamp=True)
    out = Processor(job, LimitsConfig(), DEFAULT_RULES).process(parsed.streams, "", 0)
    [chunk] = out.chunks[""]
    return chunk.labels


def test_log_group_backfill_with_subscription_labels(moto: Moto, receiver: Receiver, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    start = now - 30 * HOUR_MS
    events_a = [(start + i * 90_000, f"a line {i}") for i in range(40)]  # spans about an hour: two windows
    events_b = [(start + i * 90_000, f"b line {i}") for i in range(10)] + [(start + 10 * 90_000, "same")] * 2
    _group(moto, "/aws/lambda/x", {"2024/01/01/[$LATEST]aaa": events_a, "2024/01/01/[$LATEST]bbb": events_b})
    r = run_backfill(moto, tmp_path, "cloudwatch:///aws/lambda/x", client_config(tmp_path, receiver.url),
                     "--since", "31h")
    assert r.returncode == 0, r.stderr + r.stdout
    got = receiver.entries()
    assert sorted(e["line"] for e in got) == sorted(m for _, m in events_a + events_b)
    owner = "123456789012"  # moto's account
    want = _subscription_labels("/aws/lambda/x", "2024/01/01/[$LATEST]aaa", owner, keep_stream=False)
    assert {e["labels_raw"] for e in got} == {want}
    assert 'log_group="/aws/lambda/x"' in want and f'owner="{owner}"' in want
    a = {e["line"]: e["ts"] for e in got if e["line"].startswith("a ")}
    assert all(a[m] == ts * 1_000_000 for ts, m in events_a)  # each event's own time
    same = [e for e in got if e["line"] == "same"]
    assert len({e["ts"] for e in same}) == 2  # equal events kept apart, not merged by Loki
    assert "windows done" in r.stdout

    # A second run reads only what is new since the first: the relative --since and the open
    # --until moved, but the windows done are not read again.
    receiver.reset()
    moto.logs.put_log_events(logGroupName="/aws/lambda/x", logStreamName="2024/01/01/[$LATEST]aaa",
                             logEvents=[{"timestamp": int(time.time() * 1000), "message": "new"}])
    time.sleep(0.01)
    r = run_backfill(moto, tmp_path, "cloudwatch:///aws/lambda/x", client_config(tmp_path, receiver.url),
                     "--since", "31h")
    assert r.returncode == 0, r.stderr
    assert receiver.lines() == ["new"]
    m = re.search(r"done by an earlier run \(skipped\): (\d+)", r.stdout)
    assert m is not None and int(m.group(1)) >= 30, r.stdout  # of the 32 or 33 hour windows


def test_stream_prefix_and_keep_stream(moto: Moto, receiver: Receiver, tmp_path: Path) -> None:
    import yaml

    now = int(time.time() * 1000)
    _group(moto, "app", {"web-1": [(now - 5000, "w1")], "web-2": [(now - 4000, "w2")], "worker-1": [(now - 3000, "k1")]})
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "clients": [{"url": receiver.url}],
        "scrape_configs": [{"job_name": "cw", "aws_lambda": {"keep_stream": True}}]}))
    r = run_backfill(moto, tmp_path, "--stream-prefix", "web-", "cloudwatch://app", f"-config.file={cfg}",
                     "--since", "1h", "--job", "cw")
    assert r.returncode == 0, r.stderr + r.stdout
    got = {e["line"]: e["labels_raw"] for e in receiver.entries()}
    assert set(got) == {"w1", "w2"}
    assert got["w1"] == _subscription_labels("app", "web-1", "123456789012", keep_stream=True).replace('job="aws", ', "")


def test_missing_log_group_is_an_error(moto: Moto, tmp_path: Path) -> None:
    r = run_backfill(moto, tmp_path, "cloudwatch://nope", "-client.url=http://127.0.0.1:9/loki/api/v1/push")
    assert r.returncode == 1 and "no log group named 'nope'" in r.stderr


def test_throttled_calls_back_off_and_retry() -> None:
    from botocore.exceptions import ClientError

    from relay.backfill.cloudwatch import call

    answers: list[object] = [ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "FilterLogEvents")] * 3
    answers.append({"events": []})
    sleeps: list[float] = []

    def filter_log_events(**kw: object) -> object:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    assert call(filter_log_events, sleep=sleeps.append, logGroupName="g") == {"events": []}
    assert len(sleeps) == 3 and sleeps[0] < sleeps[2] and all(0 < s <= 30 for s in sleeps)

    def denied(**kw: object) -> object:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "FilterLogEvents")

    with pytest.raises(ClientError):
        call(denied, sleep=sleeps.append)
    assert len(sleeps) == 3  # not retried


def test_windows_are_aligned_and_cover_the_range() -> None:
    from relay.backfill.cloudwatch import windows

    w = windows(5 * HOUR_MS + 10, 7 * HOUR_MS + 5)
    assert w == [(5 * HOUR_MS + 10, 6 * HOUR_MS), (6 * HOUR_MS, 7 * HOUR_MS), (7 * HOUR_MS, 7 * HOUR_MS + 5)]
