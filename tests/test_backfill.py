"""`loki-relay backfill s3://...` end to end: moto's S3 server, the command as a real process, the Loki stand-in."""

from __future__ import annotations

import datetime as dt
import gzip
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests import backfill_samples as bs
from tests.backfill_env import Moto, backfill_cmd, client_config, env, moto, run_backfill  # noqa: F401  (fixture)
from tests.conftest import ROOT
from tests.loki_receiver import Receiver

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _bucket(moto: Moto, name: str) -> str:
    moto.s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return name


def _received(rx: Receiver) -> Counter[tuple[str, str]]:
    return Counter((e["labels_raw"], e["line"]) for e in rx.entries())


def test_every_log_type_with_its_labels_and_exact_counts(moto: Moto, receiver: Receiver, tmp_path: Path) -> None:
    bucket = _bucket(moto, "every-type")
    t = NOW - dt.timedelta(days=2)
    objects = bs.every_type(t, n=6)
    moto.put(bucket, list(objects.values()))
    moto.put(bucket, [bs.cloudtrail_digest(t, "d")])
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", client_config(tmp_path, receiver.url), "--since", "72h")
    assert r.returncode == 0, r.stderr
    got = receiver.entries()
    by_type: dict[str, list[str]] = {}
    for e in got:
        assert e["labels"]["job"] == "aws" and e["labels"]["bucket"] == bucket
        by_type.setdefault(e["labels"]["log_type"], []).append(e["line"])
    assert set(by_type) == set(objects)
    for log_type, (_, _, lines) in objects.items():
        assert sorted(by_type[log_type]) == sorted(lines), log_type  # every line once, nothing else
    labels = {e["labels"]["log_type"]: e["labels"] for e in got}
    assert labels["s3_lb"]["source"] == "my-alb" and labels["s3_lb"]["owner"] == bs.ACCOUNT
    assert labels["s3_vpc_flow"]["source"] == "fl-0abc123"
    assert labels["s3_cloudfront"]["source"] == "E2EXAMPLE0123"
    assert labels["s3_msk"]["source"] == "my-cluster-1"
    assert labels["s3_access"]["source"] == "src-bucket"
    # own timestamps: the ALB line's ISO time, the VPC record's start
    lb = next(e for e in got if e["labels"]["log_type"] == "s3_lb" and e["line"] == objects["s3_lb"][2][3])
    assert lb["ts"] == (int((t + dt.timedelta(seconds=3)).timestamp()) * 10**9 + 3000)
    assert "9 objects done" in r.stdout and f"sent {sum(len(o[2]) for o in objects.values())} lines" in r.stdout
    assert "objects with no date in the key (included): 1" in r.stdout
    assert "CloudTrail digest files or folders left out: 1" in r.stdout


def test_equal_times_and_equal_lines_all_arrive_in_order(moto: Moto, receiver: Receiver, tmp_path: Path) -> None:
    bucket = _bucket(moto, "equal-times")
    t = NOW - dt.timedelta(days=1)
    key, body, lines = bs.vpc(t, "eq", 12)  # three records per start second
    key2, body2, lines2 = bs.unknown("dup", 3)  # ends with the same line twice, both at LastModified
    moto.put(bucket, [(key, body, lines), (key2, body2, lines2)])
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", client_config(tmp_path, receiver.url))
    assert r.returncode == 0, r.stderr
    got = receiver.entries()
    vpc = [e for e in got if e["labels"]["log_type"] == "s3_vpc_flow"]
    assert [e["line"] for e in sorted(vpc, key=lambda e: e["ts"])] == lines  # file order by time
    assert len({e["ts"] for e in vpc}) == len(lines)  # no two alike: Loki keeps every one
    start = int(t.timestamp()) * 10**9
    assert [e["ts"] for e in sorted(vpc, key=lambda e: e["ts"])][:4] == [start, start + 1, start + 2, start + 10**9]
    other = [e for e in got if e["labels"]["log_type"] == "s3"]
    assert sorted(e["line"] for e in other) == sorted(lines2)
    assert len({(e["ts"], e["line"]) for e in other}) == len(lines2)


def test_date_filtering_lists_only_the_days_asked(moto: Moto, tmp_path: Path) -> None:
    from relay.backfill.s3 import Lister

    bucket = _bucket(moto, "dates")
    base = (NOW - dt.timedelta(days=20)).replace(hour=12, minute=0, second=0)
    days = [base + dt.timedelta(days=i) for i in range(10)]
    objs = [bs.alb(d, f"d{i}", 2) for i, d in enumerate(days)] + [bs.vpc(d, f"v{i}", 2) for i, d in enumerate(days)]
    objs += [bs.cloudfront(d, f"c{i}", 2, prefix="cdn") for i, d in enumerate(days)]
    objs += [bs.s3_access(d, f"{i:x}", 2, partitioned=False) for i, d in enumerate(days)]
    objs += [bs.msk(d, f"m{i}", 2) for i, d in enumerate(days)]
    objs += [bs.unknown("nodate", 1)]
    moto.put(bucket, objs)

    prefixes: list[tuple[str, str]] = []

    class Recording:
        def list_objects_v2(self, **kw: object) -> object:
            prefixes.append((str(kw["Prefix"]), str(kw.get("StartAfter", ""))))
            return moto.s3.list_objects_v2(**kw)

    since = int(days[3].replace(hour=0).timestamp()) * 10**9
    until = int(days[5].replace(hour=23, minute=59).timestamp()) * 10**9
    lister = Lister(Recording(), bucket, "", since, until)
    keys = [o.key for o in lister.objects()]
    wanted = [k for i in (3, 4, 5) for k in (objs[i][0], objs[10 + i][0], objs[20 + i][0], objs[30 + i][0], objs[40 + i][0])]
    assert sorted(keys) == sorted(wanted + ["misc/nodate-notes.txt"])
    assert lister.stats.undated == 1
    listed = " ".join(p for p, _ in prefixes)
    for i in (0, 1, 2, 6, 7, 8, 9):  # days out of range are never listed
        assert days[i].strftime("/%Y/%m/%d/") not in listed
    # the flat CloudFront and S3-access levels were entered at the first day asked for
    assert ("cdn/", "cdn/E2EXAMPLE0123." + days[3].strftime("%Y-%m-%d")) in prefixes
    assert ("simple/", "simple/" + days[3].strftime("%Y-%m-%d")) in prefixes


def test_dry_run_counts_and_sends_nothing(moto: Moto, receiver: Receiver, tmp_path: Path) -> None:
    bucket = _bucket(moto, "dry")
    t = NOW - dt.timedelta(days=1)
    objs = [bs.alb(t + dt.timedelta(minutes=5 * i), f"dry{i}", 7) for i in range(4)] + [bs.unknown("x", 2)]
    moto.put(bucket, objs)
    r = run_backfill(moto, tmp_path, "--dry-run", f"s3://{bucket}/AWSLogs/", client_config(tmp_path, receiver.url))
    assert r.returncode == 0, r.stderr
    assert "(dry run): 4 objects done, would send 28 lines" in r.stdout
    raw = sum(len(gzip.decompress(b)) for _, b, _ in objs[:4])
    assert f"read {raw / 1000:.1f}kB" in r.stdout
    assert receiver.requests() == []
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.jsonl"))


def test_killed_mid_run_resumes_sending_every_line_once(moto: Moto, receiver: Receiver, tmp_path: Path) -> None:
    bucket = _bucket(moto, "resume")
    t = NOW - dt.timedelta(days=1)
    objs = [bs.alb(t + dt.timedelta(minutes=i), f"k{i:02d}", 20) for i in range(30)]
    moto.put(bucket, objs)
    ckpt = tmp_path / "ckpt.jsonl"
    args = [f"s3://{bucket}/", client_config(tmp_path, receiver.url), "--checkpoint", str(ckpt), "--rate", "200",
            "--concurrency", "2"]
    proc = subprocess.Popen(backfill_cmd(*args), cwd=ROOT, env=env(moto, tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if ckpt.exists() and ckpt.read_text().count('"done"') >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = [orjson.loads(line)["done"] for line in ckpt.read_text().splitlines()[1:]]
    assert 5 <= len(done_before) < 30
    first = len(receiver.entries())

    r = run_backfill(moto, tmp_path, *args)
    assert r.returncode == 0, r.stderr
    assert f"done by an earlier run (skipped): {len(done_before)}" in r.stdout
    second = receiver.entries(offset=first)
    done_lines = {line for key, _, lines in objs if key in done_before for line in lines}
    assert not [e for e in second if e["line"] in done_lines]  # nothing acknowledged is sent again
    everything = Counter(e["line"] for e in receiver.entries())
    assert set(everything) == {line for _, _, lines in objs for line in lines}
    # Lines sent twice can only be of the objects in flight at the kill, and a resend is
    # identical (same time, same line), so Loki stores it once.
    twice = {line for line, n in everything.items() if n > 1}
    assert not twice & done_lines
    distinct = {(e["labels_raw"], e["ts"], e["line"]) for e in receiver.entries()}
    assert len(distinct) == 30 * 20
    assert len(ckpt.read_text().splitlines()) == 31  # header + every object once


def test_rate_limited_429_waits_retry_after_then_delivers(moto: Moto, receiver: Receiver, tmp_path: Path) -> None:
    bucket = _bucket(moto, "limited")
    t = NOW - dt.timedelta(hours=5)
    objs = [bs.alb(t, "r1", 10), bs.alb(t + dt.timedelta(minutes=5), "r2", 10)]
    moto.put(bucket, objs)
    receiver.fail(429, count=2, retry_after=1)
    started = time.monotonic()
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", client_config(tmp_path, receiver.url), "--concurrency", "1")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - started >= 2  # two 429s, each with Retry-After: 1
    statuses = [q["status"] for q in receiver.requests()]
    assert statuses[:2] == [429, 429] and statuses[2:] and set(statuses[2:]) == {204}
    assert sorted(receiver.lines()) == sorted(objs[0][2] + objs[1][2])


def test_old_entries_skip_restamp_or_send(moto: Moto, receiver: Receiver, tmp_path: Path) -> None:
    bucket = _bucket(moto, "old")
    old = bs.alb(NOW - dt.timedelta(days=10), "old", 5)
    new = bs.alb(NOW - dt.timedelta(days=1), "new", 5)
    moto.put(bucket, [old, new])
    cfg = client_config(tmp_path, receiver.url)

    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", cfg, "--checkpoint", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    assert sorted(receiver.lines()) == sorted(new[2])  # default: skip
    assert "entries older than reject_old_samples_max_age (168:00:00): 5, left out" in r.stdout
    assert "backfill: 5 entries are older than Loki's reject_old_samples_max_age" in r.stderr  # said before sending

    receiver.reset()
    started = time.time_ns()
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", cfg, "--old-entries", "receive-time",
                     "--checkpoint", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    got = {e["line"]: e["ts"] for e in receiver.entries()}
    assert set(got) == set(old[2] + new[2])
    assert all(started - 3600 * 10**9 < got[line] < time.time_ns() for line in old[2])
    assert [got[line] for line in old[2]] == sorted(got[line] for line in old[2])  # file order kept

    receiver.reset()
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", cfg, "--old-entries", "send", "--checkpoint", str(tmp_path / "c"))
    assert r.returncode == 1  # the stand-in, like Loki, refuses them: that object failed
    assert "FAILED objects: 1" in r.stdout and old[0] in r.stdout
    # Both objects shared the refused push; the new one's part was pushed again alone and is
    # done. Loki keeps one copy of an entry sent twice (same stream, time and line).
    assert {(e["labels_raw"], e["ts"], e["line"]) for e in receiver.entries()} == \
        {(e["labels_raw"], e["ts"], e["line"]) for e in receiver.entries() if e["line"] in new[2]}
    assert sorted(set(receiver.lines())) == sorted(new[2])
    assert "1 objects done" in r.stdout

    receiver.reset()  # a Loki with a longer limit: tell the backfill, and all is sent
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", cfg, "--reject-old-samples-max-age", "0",
                     "--checkpoint", str(tmp_path / "d"))
    assert r.returncode == 1  # the stand-in still has 168h


def test_failed_object_is_listed_and_retried_by_the_next_run(moto: Moto, receiver: Receiver, tmp_path: Path) -> None:
    bucket = _bucket(moto, "broken")
    t = NOW - dt.timedelta(days=1)
    good = bs.alb(t, "good", 4)
    bad_key = bs.alb(t + dt.timedelta(minutes=5), "bad", 4)
    moto.put(bucket, [good, (bad_key[0], b"\x1f\x8b" + b"not gzip at all", [])])
    cfg = client_config(tmp_path, receiver.url)
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", cfg)
    assert r.returncode == 1
    assert f"s3://{bucket}/{bad_key[0]}" in r.stdout and "FAILED objects: 1" in r.stdout
    assert sorted(receiver.lines()) == sorted(good[2])
    moto.put(bucket, [bad_key])  # fixed
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", cfg)
    assert r.returncode == 0, r.stdout
    assert "1 objects done" in r.stdout and "done by an earlier run (skipped): 1" in r.stdout
    assert sorted(receiver.lines()) == sorted(good[2] + bad_key[2])


def test_tenant_and_forced_type(moto: Moto, receiver: Receiver, tmp_path: Path) -> None:
    bucket = _bucket(moto, "forced")
    t = NOW - dt.timedelta(days=1)
    key, body, lines = bs.alb(t, "f", 3)
    moto.put(bucket, [("elsewhere/lb.log.gz", body, lines)])
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/elsewhere/", "--type=s3_lb", "--tenant", "backfill",
                     client_config(tmp_path, receiver.url))
    assert r.returncode == 0, r.stderr
    got = receiver.entries(tenant="backfill")
    assert sorted(e["line"] for e in got) == sorted(lines)
    assert {e["labels"]["log_type"] for e in got} == {"s3_lb"}
    assert got[0]["ts"] // 10**9 == int(t.timestamp())  # parsed as ALB: the line's own time


def test_unknown_job_and_bad_source_are_refused(moto: Moto, tmp_path: Path) -> None:
    r = run_backfill(moto, tmp_path, "s3://b/", "--job", "nope")
    assert r.returncode == 1 and "no job named 'nope'" in r.stderr
    r = run_backfill(moto, tmp_path, "ftp://b/")
    assert r.returncode == 2 and "unknown source" in r.stderr
    r = run_backfill(moto, tmp_path, "s3://no-such-bucket/", "-client.url=http://127.0.0.1:9/loki/api/v1/push")
    assert r.returncode == 1 and "NoSuchBucket" in r.stderr


@pytest.mark.parametrize("argv", [
    ["s3://b/p", "--since", "72h", "--rate=5MB"],
    ["--since=72h", "s3://b/p", "-rate", "5MB"],
])
def test_flags_before_or_after_the_url(argv: list[str]) -> None:
    from relay.backfill.cli import parse_args

    o = parse_args(argv, now_ns=1_000_000 * 10**9)
    assert o.url == "s3://b/p" and o.since_ns == (1_000_000 - 72 * 3600) * 10**9
    assert o.rate is not None and (o.rate.per_second, o.rate.unit) == (5e6, "bytes")


def test_cli_values() -> None:
    from relay.backfill.cli import UsageError, parse_args, parse_rate, parse_time

    assert parse_args(["cloudwatch:///aws/lambda/x"]).url == "cloudwatch:///aws/lambda/x"
    from relay.backfill.cloudwatch import split_url

    assert split_url("cloudwatch:///aws/lambda/x") == "/aws/lambda/x"
    assert split_url("cloudwatch://plain") == "plain"
    assert (parse_rate("1500").per_second, parse_rate("1500").unit) == (1500, "lines")
    assert parse_rate("512KiB").per_second == 512 * 1024
    assert parse_time("2024-05-01T10:00:00Z", 0, "since") == 1714557600 * 10**9
    assert parse_time("2024-05-01T12:00:00+02:00", 0, "since") == 1714557600 * 10**9
    for bad in (["s3://b", "--since", "yesterday"], ["s3://b", "--rate", "fast"], ["s3://b", "--old-entries", "drop"],
                ["s3://b", "s3://c"], ["s3://b", "--type", "s3_nope"], ["s3://b", "--stream-prefix", "x"],
                ["s3://b", "--since", "1h", "--until", "2h"]):
        with pytest.raises(UsageError):
            parse_args(bad)


def test_the_jobs_pipeline_stages_apply(moto: Moto, receiver: Receiver, tmp_path: Path) -> None:
    import yaml

    bucket = _bucket(moto, "with-stages")
    lines = ["level=info msg=start", "level=debug msg=healthcheck", "level=error msg=boom"]
    moto.put(bucket, [("misc/app.log", ("\n".join(lines) + "\n").encode(), lines)])
    cfg = tmp_path / "stages.yaml"
    cfg.write_text(yaml.safe_dump({
        "clients": [{"url": receiver.url}],
        "scrape_configs": [{"job_name": "staged", "aws_lambda": {"labels": {"job": "aws"}}, "pipeline_stages": [
            {"logfmt": {"mapping": {"level": None, "msg": None}}},
            {"labels": {"level": None}},
            {"drop": {"source": "msg", "value": "healthcheck", "drop_counter_reason": "health"}},
            {"output": {"source": "msg"}},
        ]}]}))
    r = run_backfill(moto, tmp_path, f"s3://{bucket}/", f"-config.file={cfg}", "--job", "staged")
    assert r.returncode == 0, r.stderr
    got = sorted((e["labels"]["level"], e["line"]) for e in receiver.entries())
    assert got == [("error", "boom"), ("info", "start")]
