"""Read a CloudWatch Logs group through FilterLogEvents, one time window at a time.

A window (an hour by default) is a unit of work and of the checkpoint. Events get the
labels a subscription delivers (`__aws_log_type="cloudwatch"`, `__aws_cloudwatch_log_group`,
`__aws_cloudwatch_owner`, and `__aws_cloudwatch_log_stream` with the job's keep_stream).
`--stream-prefix` picks the streams with DescribeLogStreams, then asks for them by name,
100 at a time (FilterLogEvents' limit). Throttled calls are retried with exponential
backoff and jitter beyond botocore's own retries.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

from .deps import CLOUDWATCH, Labels

log = logging.getLogger("relay.backfill")

WINDOW_MS = 3600 * 1000
_THROTTLED = {"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "LimitExceededException"}
MAX_ATTEMPTS = 12
_NAMES_PER_CALL = 100


def call(fn: Callable[..., Any], *, sleep: Callable[[float], None] = time.sleep, base: float = 0.5,
         cap: float = 30.0, **kwargs: Any) -> Any:
    """fn(**kwargs), retried while AWS says it is throttling (ClientError with a throttling code)."""
    from botocore.exceptions import ClientError

    attempt = 0
    while True:
        try:
            return fn(**kwargs)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            attempt += 1
            if code not in _THROTTLED or attempt >= MAX_ATTEMPTS:
                raise
            delay = random.uniform(0.5, 1.0) * min(cap, base * 2 ** (attempt - 1))
            log.warning("CloudWatch Logs throttled (%s), retrying in %.1fs (attempt %d)", code, delay, attempt)
            sleep(delay)


def split_url(url: str) -> str:
    """cloudwatch://NAME -> NAME, as is: cloudwatch:///aws/lambda/x names /aws/lambda/x."""
    return url[len("cloudwatch://"):]


def describe_group(client: Any, group: str) -> tuple[str, int]:
    """(owner account, creation time in ms) of a log group; LookupError if there is none."""
    token = None
    while True:
        args: dict[str, Any] = {"logGroupNamePrefix": group}
        if token:
            args["nextToken"] = token
        page = call(client.describe_log_groups, **args)
        for g in page.get("logGroups", ()):
            if g.get("logGroupName") == group:
                arn = g.get("arn", "")  # arn:aws:logs:<region>:<account>:log-group:<name>:*
                parts = arn.split(":")
                return (parts[4] if len(parts) > 4 else ""), int(g.get("creationTime", 0))
        token = page.get("nextToken")
        if not token:
            raise LookupError(f"no log group named {group!r}")


def stream_names(client: Any, group: str, prefix: str) -> list[str]:
    names: list[str] = []
    token = None
    while True:
        args: dict[str, Any] = {"logGroupName": group, "logStreamNamePrefix": prefix}
        if token:
            args["nextToken"] = token
        page = call(client.describe_log_streams, **args)
        names += [s["logStreamName"] for s in page.get("logStreams", ())]
        token = page.get("nextToken")
        if not token:
            return names


def windows(since_ms: int, until_ms: int, step: int = WINDOW_MS) -> list[tuple[int, int]]:
    """[start, end) windows covering [since, until), aligned to `step` so re-runs cut the same."""
    out = []
    start = since_ms - since_ms % step
    while start < until_ms:
        out.append((max(start, since_ms), min(start + step, until_ms)))
        start += step
    return out


def unit_id(start_ms: int, end_ms: int) -> str:
    return f"{start_ms}-{end_ms}"


def not_done(window: tuple[int, int], done: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of a window no done window covers. A relative --since or an open --until
    shifts the first and last windows between runs; only what is new gets read."""
    parts = [window]
    for ds, de in done:
        nxt = []
        for s, e in parts:
            if de <= s or ds >= e:
                nxt.append((s, e))
                continue
            if s < ds:
                nxt.append((s, ds))
            if de < e:
                nxt.append((de, e))
        parts = nxt
    return parts


def done_windows(ids: list[str]) -> list[tuple[int, int]]:
    out = []
    for i in ids:
        s, _, e = i.partition("-")
        if s.isdigit() and e.isdigit():
            out.append((int(s), int(e)))
    return out


class WindowReader:
    """The events of one window, page by page. Blocking: call `next_chunk` from a thread."""

    def __init__(self, client: Any, group: str, owner: str, window: tuple[int, int], keep_stream: bool,
                 streams: list[str] | None) -> None:
        self.client = client
        self.group = group
        self.window = window
        self.keep_stream = keep_stream
        self.labels: Labels = {"__aws_log_type": CLOUDWATCH, "__aws_cloudwatch_log_group": group}
        if owner:
            self.labels["__aws_cloudwatch_owner"] = owner
        self.bytes = 0
        self._pages = self._iter(streams)

    def _iter(self, streams: list[str] | None) -> Iterator[dict[str, Any]]:
        start, end = self.window
        batches: list[list[str] | None] = [None]
        if streams is not None:
            batches = [streams[i:i + _NAMES_PER_CALL] for i in range(0, len(streams), _NAMES_PER_CALL)]
        for names in batches:
            # endTime is inclusive: the window's end belongs to the next window
            args: dict[str, Any] = {"logGroupName": self.group, "startTime": start, "endTime": end - 1}
            if names is not None:
                args["logStreamNames"] = names
            while True:
                page = call(self.client.filter_log_events, **args)
                yield page
                token = page.get("nextToken")
                if not token:
                    break
                args["nextToken"] = token

    def next_chunk(self) -> list[tuple[Labels, list[tuple[int, str]]]] | None:
        """The next page's entries per label set, or None at the end."""
        for page in self._pages:
            events = page.get("events") or ()
            if not events:
                continue
            if not self.keep_stream:
                entries = [(e["timestamp"] * 1_000_000, e["message"]) for e in events]
                self.bytes += sum(len(m) for _, m in entries)
                return [(self.labels, entries)]
            by_stream: dict[str, list[tuple[int, str]]] = {}
            for e in events:
                by_stream.setdefault(e.get("logStreamName", ""), []).append((e["timestamp"] * 1_000_000, e["message"]))
            out = []
            for name, entries in by_stream.items():
                self.bytes += sum(len(m) for _, m in entries)
                labels = dict(self.labels)
                if name:
                    labels["__aws_cloudwatch_log_stream"] = name
                out.append((labels, entries))
            return out
        return None

    def close(self) -> None:
        self._pages.close()  # type: ignore[attr-defined]
