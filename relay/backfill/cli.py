"""`loki-relay backfill URL [flags]`: flags before or after the URL, Go style or GNU style."""

from __future__ import annotations

import datetime as dt
import re
import sys
import time
from dataclasses import dataclass, field

from .deps import ConfigError, parse_duration, parse_size, s3logs
from .stamps import POLICIES, SKIP

USAGE = """usage: loki-relay backfill s3://BUCKET/PREFIX | cloudwatch://LOG_GROUP [flags]

Sends logs already stored in S3 or CloudWatch Logs to Loki, as the job would have.
Each entry keeps its own time. A re-run of the same command continues where the last
one stopped; nothing Loki acknowledged is sent again.

  --job=NAME              the job whose labels, relabel rules and S3 settings apply (default: the
                          first aws_lambda job of the config, else lambda-promtail's defaults)
  --since=TIME            RFC 3339 time or a duration back from now (72h, 7d); objects are
  --until=TIME            selected by the date in their key; undated keys are always included
  --type=TYPE             force the S3 log type (s3_lb, s3_vpc_flow, s3_cloudtrail, s3_cloudfront,
                          s3_waf, s3_guardduty, s3_msk, s3_access, s3); default: from the key
  --stream-prefix=P       CloudWatch: only log streams whose name starts with P
  --concurrency=N         objects or windows in flight at once (default 4)
  --rate=R                at most R lines/s (a plain number) or bytes/s (with a unit: 5MB, 512KiB)
  --tenant=ID             X-Scope-OrgID for everything sent (default: the job's and clients')
  --old-entries=POLICY    entries older than Loki's reject_old_samples_max_age: skip (default),
                          receive-time (stamp them with the run's start time) or send (as they are)
  --reject-old-samples-max-age=D   Loki's limit (default: the config's limits_config.reject_old_samples_max_age,
                          else 168h as Loki; 0: Loki rejects none)
  --dry-run               read and count (objects, lines, bytes, old entries); send nothing
  --checkpoint=FILE       where progress is kept (default: $XDG_CACHE_HOME/loki-relay/, per source and job)
  --progress-interval=D   log a progress line this often when not on a terminal (default 10s)
  --cloudwatch-window=D   CloudWatch time window per unit of work (default 1h)

Relay flags: -config.file, -config.expand-env, -client.url, -client.tenant-id,
-client.external-labels, -log.level, -log.format.
"""

RELAY_VALUES = {"config.file", "client.url", "client.tenant-id", "client.external-labels", "log.level", "log.format"}
RELAY_SWITCHES = {"config.expand-env"}
_VALUES = {"job", "since", "until", "type", "stream-prefix", "concurrency", "rate", "tenant", "old-entries",
           "reject-old-samples-max-age", "checkpoint", "progress-interval", "cloudwatch-window"}
_SWITCHES = {"dry-run", "help", "h"}


class UsageError(Exception):
    pass


@dataclass(slots=True)
class Rate:
    per_second: float
    unit: str  # "lines" or "bytes"


@dataclass(slots=True)
class Options:
    url: str = ""
    job: str = ""
    since_ns: int | None = None
    until_ns: int | None = None
    log_type: str = ""
    stream_prefix: str = ""
    concurrency: int = 4
    rate: Rate | None = None
    tenant: str = ""
    old_entries: str = SKIP
    max_age_ns: int | None = None  # --reject-old-samples-max-age; None: the config's, else Loki's default
    dry_run: bool = False
    checkpoint: str = ""
    progress_interval: float = 10.0
    window_ms: int = 3600 * 1000
    help: bool = False
    relay_values: dict[str, str] = field(default_factory=dict)  # -config.file, -client.url, ... by name
    expand_env: bool = False  # -config.expand-env


def parse_time(text: str, now_ns: int, what: str) -> int:
    """RFC 3339 (or a date), or a duration back from now; unix ns."""
    s = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ].*)?", s):
        try:
            t = dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise UsageError(f"--{what}: invalid time {text!r} (RFC 3339, e.g. 2024-05-01T00:00:00Z)") from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
        return int(t.replace(microsecond=0).timestamp()) * 1_000_000_000 + t.microsecond * 1000
    try:
        seconds = parse_duration(s, f"--{what}")
    except ConfigError:
        raise UsageError(f"--{what}: expected an RFC 3339 time or a duration such as 72h, got {text!r}") from None
    return now_ns - int(seconds * 1_000_000_000)


def parse_rate(text: str) -> Rate:
    s = text.strip()
    try:
        if re.fullmatch(r"\d+(\.\d+)?", s):
            rate = Rate(float(s), "lines")
        else:
            rate = Rate(float(parse_size(s, "--rate")), "bytes")
    except ConfigError:
        raise UsageError(f"--rate: expected lines/s (a number) or bytes/s with a unit (5MB), got {text!r}") from None
    if rate.per_second <= 0:
        raise UsageError("--rate: must be more than 0")
    return rate


def _split(argv: list[str]) -> tuple[list[str], dict[str, str], set[str]]:
    positional: list[str] = []
    values: dict[str, str] = {}
    switches: set[str] = set()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional += argv[i:]
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if name in _SWITCHES or name in RELAY_SWITCHES:
            if eq and value.lower() not in ("true", "false", "1", "0"):
                raise UsageError(f"invalid boolean value {value!r} for --{name}")
            if not eq or value.lower() in ("true", "1"):
                switches.add(name)
            else:
                switches.discard(name)
        elif name in _VALUES or name in RELAY_VALUES:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: --{name}")
                value = argv[i]
                i += 1
            values[name] = value
        else:
            raise UsageError(f"flag provided but not defined: {arg.partition('=')[0]}")
    return positional, values, switches


def parse_args(argv: list[str], now_ns: int | None = None) -> Options:
    now = time.time_ns() if now_ns is None else now_ns
    positional, values, switches = _split(argv)
    o = Options()
    o.help = "help" in switches or "h" in switches
    if o.help:
        return o
    if len(positional) != 1:
        raise UsageError("expected one source: s3://BUCKET/PREFIX or cloudwatch://LOG_GROUP"
                         + (f" (got {' '.join(positional)})" if positional else ""))
    o.url = positional[0]
    if o.url.startswith("s3://"):
        if not o.url[5:].partition("/")[0]:
            raise UsageError(f"no bucket in {o.url!r}")
    elif o.url.startswith("cloudwatch://"):
        if not o.url[len("cloudwatch://"):]:
            raise UsageError(f"no log group in {o.url!r}")
    else:
        raise UsageError(f"unknown source {o.url!r}: expected s3://BUCKET/PREFIX or cloudwatch://LOG_GROUP")
    o.job = values.get("job", "")
    if "since" in values:
        o.since_ns = parse_time(values["since"], now, "since")
    if "until" in values:
        o.until_ns = parse_time(values["until"], now, "until")
    if o.since_ns is not None and o.until_ns is not None and o.since_ns > o.until_ns:
        raise UsageError("--since is after --until")
    if "type" in values:
        if values["type"] not in s3logs.LOG_TYPES:
            raise UsageError(f"--type: expected one of {', '.join(s3logs.LOG_TYPES)}, got {values['type']!r}")
        o.log_type = values["type"]
    o.stream_prefix = values.get("stream-prefix", "")
    if o.stream_prefix and not o.url.startswith("cloudwatch://"):
        raise UsageError("--stream-prefix is for cloudwatch:// sources")
    if o.log_type and not o.url.startswith("s3://"):
        raise UsageError("--type is for s3:// sources")
    if "concurrency" in values:
        try:
            o.concurrency = int(values["concurrency"])
        except ValueError:
            o.concurrency = 0
        if not 1 <= o.concurrency <= 256:
            raise UsageError(f"--concurrency: expected an integer from 1 to 256, got {values['concurrency']!r}")
    if "rate" in values:
        o.rate = parse_rate(values["rate"])
    o.tenant = values.get("tenant", "")
    if "old-entries" in values:
        if values["old-entries"] not in POLICIES:
            raise UsageError(f"--old-entries: expected one of {', '.join(POLICIES)}, got {values['old-entries']!r}")
        o.old_entries = values["old-entries"]
    if "reject-old-samples-max-age" in values:
        o.max_age_ns = _duration_ns(values, "reject-old-samples-max-age", 0)
    o.progress_interval = _duration_ns(values, "progress-interval", 10 * 1_000_000_000) / 1e9
    o.window_ms = _duration_ns(values, "cloudwatch-window", o.window_ms * 1_000_000) // 1_000_000
    if o.window_ms < 1000:
        raise UsageError("--cloudwatch-window: at least 1s")
    o.dry_run = "dry-run" in switches
    o.checkpoint = values.get("checkpoint", "")
    o.relay_values = {k: v for k, v in values.items() if k in RELAY_VALUES}
    o.expand_env = "config.expand-env" in switches
    return o


def _duration_ns(values: dict[str, str], name: str, default: int) -> int:
    if name not in values:
        return default
    try:
        return int(parse_duration(values[name], f"--{name}") * 1_000_000_000)
    except ConfigError as e:
        raise UsageError(str(e)) from None


def main(argv: list[str]) -> int:
    try:
        opts = parse_args(argv)
    except UsageError as e:
        print(f"{e}\n{USAGE}", file=sys.stderr)
        return 2
    if opts.help:
        print(USAGE)
        return 0
    from .run import run_command

    return run_command(opts)


__all__ = ["USAGE", "Options", "Rate", "UsageError", "main", "parse_args", "parse_rate", "parse_time"]
