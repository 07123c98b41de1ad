"""`loki-relay backfill`: Loki's age limit (counted before the first push, settable in the config)
and batching of small objects (each checkpointed only once Loki took all of its entries)."""

from __future__ import annotations

import datetime as dt
import gzip
import re
import time
from pathlib import Path

import orjson
import pytest
import yaml

from tests import backfill_samples as bs
from tests.backfill_env import Moto, client_config, moto, run_backfill  # noqa: F401  (fixture)
from tests.loki_receiver import Receiver

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
LIMIT = dt.timedelta(hours=168)  # Loki's default reject_old_samples_max_age, and the stand-in's


def _bucket(moto: Moto, name: str) -> str:
    moto.s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return name


def alb_at(key_time: dt.datetime, times: list[dt.datetime], tag: str) -> tuple[str, bytes, list[str]]:
    """An ALB object whose key is dated key_time and whose entries have the given times."""
    key = bs.alb(key_time, tag, 1)[0]
    lines = [bs.alb(t, f"{tag}{i}", 1)[2][0] for i, t in enumerate(times)]
    return key, gzip.compress(("\n".join(lines) + "\n").encode()), lines


def cloudtrail_at(key_time: dt.datetime, times: list[dt.datetime], tag: str) -> tuple[str, bytes, list[str]]:
    """A CloudTrail object delivered late: its key is dated key_time, its events are older."""
    key = bs.cloudtrail(key_time, tag, 1)[0]
    records = [{"eventVersion": "1.08", "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventName": "PutObject",
                "tag": f"{tag}-{i}"} for i, t in enumerate(times)]
    return key, gzip.compress(orjson.dumps({"Records": records})), [orjson.dumps(r).decode() for r in records]


def _printed_old(stderr: str) -> int:
    m = re.search(r"backfill: (\d+) entries are older than Loki's reject_old_samples_max_age", stderr)
    assert m is not None, stderr
    return int(m.group(1))


def test_old_entries_are_counted_exactly_before_the_first_push(moto: Moto, receiver: Receiver, tmp_path: Path) -> None:
    bucket = _bucket(moto, "old-count")
    edge = NOW - LIMIT  # entries before this (and up to 10 minutes after) are too old for Loki
    hours = [dt.timedelta(hours=h) for h in range(6)]
    objects = {
        # every entry old: counted, then not read again (nothing to send with --old-entries=skip)
        "all_old": alb_at(edge - dt.timedelta(days=3), [edge - dt.timedelta(days=3) + h for h in hours[:5]], "ao"),
        # dated just after the limit, entries on both sides of it
        "straddling": alb_at(edge + dt.timedelta(hours=2),
                             [edge - dt.timedelta(hours=3) + h for h in hours[:3]]
                             + [edge + dt.timedelta(hours=1) + h for h in hours[:4]], "st"),
        # a CloudTrail file delivered 30 hours after its events, which are old
        "late_trail": cloudtrail_at(edge + dt.timedelta(hours=28),
                                    [edge - dt.timedelta(hours=2) + h / 60 for h in hours], "lt"),
        # dated within the margin after the limit, no old entry: read to count, none found
        "near_but_new": alb_at(edge + dt.timedelta(hours=20),
                               [edge + dt.timedelta(hours=19) + h for h in hours[:4]], "nn"),
        "recent": alb_at(NOW - dt.timedelta(days=1), [NOW - dt.timedelta(days=1) + h for h in hours], "re"),
    }
    undated = bs.unknown("fresh", 3)  # LastModified now: its entries are new
    moto.put(bucket, [*objects.values(), undated])
    cutoff = edge + dt.timedelta(minutes=10)
    expected_old = {name: [line for line, t in zip(lines, _times(name, objects), strict=True) if t < cutoff]
                    for name, (_, _, lines) in objects.items()}
    n_old = sum(map(len, expected_old.values()))
    assert [len(expected_old[k]) for k in ("all_old", "straddling", "late_trail", "near_but_new", "recent")] == \
        [5, 3, 6, 0, 0]  # the data is what the test means it to be

    receiver.fail(429, count=1, retry_after=0.2)  # the first push is logged (retried): it must come after the count
    ckpt = tmp_path / "ckpt.jsonl"
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", client_config(tmp_path, receiver.url),
                     "--checkpoint", str(ckpt))
    assert r.returncode == 0, r.stdout + r.stderr
    assert _printed_old(r.stderr) == n_old
    said = r.stderr.index(" entries are older than Loki's")
    assert "left out (--old-entries=skip" in r.stderr[said:].splitlines()[0]
    assert "(168:00:00, Loki's default)" in r.stderr[said:].splitlines()[0]
    assert said < r.stderr.index("push failed, retrying")  # said before any push
    assert f"entries older than reject_old_samples_max_age (168:00:00): {n_old}, left out" in r.stdout
    # what Loki got: everything but the old entries, once
    sent = sorted(receiver.lines())
    everything = [line for _, _, lines in objects.values() for line in lines] + undated[2]
    assert sent == sorted(line for line in everything if not any(line in old for old in expected_old.values()))
    # the objects with only old entries (all_old, late_trail) were read once, to count, and are done
    assert "read only to count old entries (nothing in them to send): 2" in r.stdout
    done = {orjson.loads(line)["done"] for line in ckpt.read_text().splitlines()[1:]}
    assert done == {key for key, _, _ in objects.values()} | {undated[0]}


def _times(name: str, objects: dict[str, tuple[str, bytes, list[str]]]) -> list[dt.datetime]:
    """The entry times the test wrote into each object, read back from its lines."""
    out = []
    for line in objects[name][2]:
        if line.startswith("{"):
            t = dt.datetime.strptime(orjson.loads(line)["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
            out.append(t.replace(tzinfo=dt.UTC))
        else:
            out.append(dt.datetime.strptime(line.split(" ")[1][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC))
    return out


def _config(tmp_path: Path, url: str, **limits: object) -> str:
    doc = {"clients": [{"url": url, "backoff_config": {"min_period": "50ms", "max_period": "1s", "max_retries": 3}}],
           "scrape_configs": [{"job_name": "aws", "aws_lambda": {"labels": {"job": "aws"}}}],
           "limits_config": {"max_line_size": "256kB", **limits}}
    path = tmp_path / "limits.yaml"
    path.write_text(yaml.safe_dump(doc))
    return f"-config.file={path}"


def test_the_limit_comes_from_the_config_and_the_flag_wins(moto: Moto, receiver: Receiver, tmp_path: Path) -> None:
    bucket = _bucket(moto, "old-config")
    ten = alb_at(NOW - dt.timedelta(days=10), [NOW - dt.timedelta(days=10, seconds=-i) for i in range(5)], "ten")
    five = alb_at(NOW - dt.timedelta(days=5), [NOW - dt.timedelta(days=5, seconds=-i) for i in range(4)], "five")
    moto.put(bucket, [ten, five])
    cfg = _config(tmp_path, receiver.url, reject_old_samples_max_age="96h")

    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", cfg, "--checkpoint", str(tmp_path / "a"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert _printed_old(r.stderr) == 9  # both objects are older than 96h
    assert "(96:00:00, limits_config.reject_old_samples_max_age)" in r.stderr
    assert receiver.requests() == []  # skip: nothing was left to send

    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", cfg, "--reject-old-samples-max-age", "144h",
                     "--checkpoint", str(tmp_path / "b"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert _printed_old(r.stderr) == 5
    assert "(144:00:00, --reject-old-samples-max-age)" in r.stderr
    assert sorted(receiver.lines()) == sorted(five[2])

    bad = _config(tmp_path, receiver.url, reject_old_samples_max_age="a week")
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", bad)
    assert r.returncode == 1 and "limits_config.reject_old_samples_max_age: invalid duration" in r.stderr


def test_the_config_limit_is_read_by_the_relay_config_and_only_reported_when_set() -> None:
    from relay.backfill.job import config_max_age
    from relay.config import parse_config

    doc = {"limits_config": {"reject_old_samples_max_age": "1w", "max_line_size": 1000}, "clients": []}
    cfg = parse_config(doc)  # the relay's own parser knows the key
    assert cfg.limits.max_line_size == 1000
    assert config_max_age(cfg, doc) == (7 * 86400 * 10**9, "limits_config.reject_old_samples_max_age")
    off = {"limits_config": {"reject_old_samples": False, "reject_old_samples_max_age": "1w"}}
    assert config_max_age(parse_config(off), off) == (0, "limits_config.reject_old_samples")
    plain = {"limits_config": {"max_line_size": 1}}
    assert config_max_age(parse_config(plain), plain) is None
    assert config_max_age(parse_config({}), {}) is None


def test_the_backfill_processor_never_refuses_old_entries_its_policy_sends(tmp_path: Path) -> None:
    from relay.backfill.job import setup
    from relay.model import new_stream

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"limits_config": {"reject_old_samples_max_age": "1h"}}))
    st = setup("", {"config.file": str(path)}, False, None)
    assert st.max_age_ns == 3600 * 10**9  # the policy's limit is the config's
    now = time.time_ns()
    out = st.processor.process([new_stream({"job": "x"}, [(now - 30 * 86400 * 10**9, "a month old"), (now, "new")])],
                               "", now)
    assert out.entries == 2 and not out.dropped and not out.errors
    ahead = st.processor.process([new_stream({"job": "x"}, [(now + 3600 * 10**9, "an hour ahead")])], "", now)
    assert ahead.entries == 0 and ahead.dropped == {"too_far_in_future": 1}  # Loki would refuse it: not sent


def test_small_objects_share_pushes_and_each_is_done_only_once_loki_took_it(moto: Moto, receiver: Receiver,
                                                                            tmp_path: Path) -> None:
    bucket = _bucket(moto, "small")
    t = NOW - dt.timedelta(days=1)
    objs = [bs.alb(t + dt.timedelta(minutes=i), f"s{i:02d}", 5) for i in range(24)]
    moto.put(bucket, objs)
    # about four objects a batch; the long batchwait means only a full batch (or the end) is pushed
    cfg = client_config(tmp_path, receiver.url, batchsize=6000, batchwait="30s")
    # Loki refuses the first push, then the first unit's part of it pushed alone: that object
    # fails; the others of that push are pushed alone too, and are done.
    receiver.fail(400, count=2)
    ckpt = tmp_path / "ckpt.jsonl"
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", cfg, "--checkpoint", str(ckpt), "--concurrency", "3")
    assert r.returncode == 1
    statuses = [q["status"] for q in receiver.requests()]
    assert statuses[:2] == [400, 400] and set(statuses[2:]) == {204}
    assert len(statuses) <= 24 // 2  # several objects a push (the refused one was split)
    got = set(receiver.lines())
    done = {orjson.loads(line)["done"] for line in ckpt.read_text().splitlines()[1:]}
    failed = {key for key, _, _ in objs if f"s3://{bucket}/{key}:" in r.stdout}
    assert len(failed) == 1 and done == {key for key, _, _ in objs} - failed
    assert "FAILED objects: 1" in r.stdout
    for key, _, lines in objs:
        if key in done:  # checkpointed: Loki has every entry of it
            assert set(lines) <= got, key
        else:
            assert not set(lines) & got, key

    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", cfg, "--checkpoint", str(ckpt), "--concurrency", "3")
    assert r.returncode == 0, r.stdout
    assert f"done by an earlier run (skipped): {len(done)}" in r.stdout
    assert set(receiver.lines()) == {line for _, _, lines in objs for line in lines}


@pytest.mark.parametrize("policy", ["receive-time", "send"])
def test_the_count_is_said_for_every_policy(moto: Moto, receiver: Receiver, tmp_path: Path, policy: str) -> None:
    bucket = _bucket(moto, f"policy-{policy}")
    old = alb_at(NOW - dt.timedelta(days=9), [NOW - dt.timedelta(days=9, seconds=-i) for i in range(6)], "o")
    moto.put(bucket, [old])
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", client_config(tmp_path, receiver.url), "--old-entries", policy,
                     "--checkpoint", str(tmp_path / policy))
    assert _printed_old(r.stderr) == 6
    assert f"(--old-entries={policy};" in r.stderr
    if policy == "receive-time":
        assert r.returncode == 0 and sorted(receiver.lines()) == sorted(old[2])
    else:
        assert r.returncode == 1 and receiver.lines() == []  # the stand-in, like Loki, refuses them


def test_the_backfill_does_not_import_relay_cli() -> None:
    # relay.cli imports the backfill to run the subcommand: the other way round would be a cycle
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = "import sys, relay.backfill.run; print(sorted(m for m in sys.modules if m == 'relay.cli'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
