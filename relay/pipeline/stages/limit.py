"""`limit`: a token bucket (`rate` entries per second, `burst`), as Promtail's limit stage.

With `drop: true` entries over the rate are dropped (`ratelimit_drop_stage`); with
`by_label_name` each value of that label has its own bucket (at most `max_distinct_labels`,
raised to 10,000 as Promtail does). Without `drop`, Promtail blocks its pipeline until a token
is free; the relay instead holds the request that brought the entries for that long, so the
sender is slowed the same way without stopping other requests.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block

log = logging.getLogger("relay.pipeline")

MIN_DISTINCT_LABELS = 10_000
DROP_REASON = "ratelimit_drop_stage"
TIMEOUT_REASON = "pipeline_timeout"


class TokenBucket:
    """golang.org/x/time/rate.Limiter: starts full; `tokens` may go negative for reservations."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last = time.monotonic()

    def _advance(self, now: float) -> None:
        if now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now

    def allow(self, now: float) -> bool:
        self._advance(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def reserve(self, now: float, max_wait: float) -> float | None:
        """Take a token now or in the future: the wait in seconds, or None if over max_wait."""
        self._advance(now)
        wait = 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate
        if wait > max_wait:
            return None
        self.tokens -= 1.0
        return wait


class LimitStage(Stage):
    kind = "limit"

    def __init__(self, ctx: BuildContext, rate: float, burst: int, drop: bool, by_label: str, max_labels: int) -> None:
        self.rate = rate
        self.burst = burst
        self.drop = drop
        self.by_label = by_label
        self.max_labels = max_labels
        self.count_drop = ctx.count_drop
        self.hold = ctx.hold
        self.max_hold = ctx.max_hold
        self.bucket = TokenBucket(rate, burst)
        # Promtail's generational map: when the current generation is full it becomes the old
        # one, and buckets still in use move over as they are asked for.
        self.current: dict[str, TokenBucket] = {}
        self.old: dict[str, TokenBucket] = {}

    def _bucket_for(self, value: str) -> TokenBucket:
        b = self.current.get(value)
        if b is None:
            b = self.old.pop(value, None) or TokenBucket(self.rate, self.burst)
            if len(self.current) >= self.max_labels:
                self.old, self.current = self.current, {}
            self.current[value] = b
        return b

    def run(self, entries: list[Entry]) -> list[Entry]:
        now = time.monotonic()
        keep: list[Entry] = []
        dropped = size = 0
        if self.by_label:
            name = self.by_label
            for e in entries:
                value = e.labels.get(name)
                if value is None or self._bucket_for(value).allow(now):
                    keep.append(e)
                else:
                    dropped += 1
                    size += len(e.line)
            reason = DROP_REASON
        elif self.drop:
            allow = self.bucket.allow
            for e in entries:
                if allow(now):
                    keep.append(e)
                else:
                    dropped += 1
                    size += len(e.line)
            reason = DROP_REASON
        else:
            longest = 0.0
            reserve = self.bucket.reserve
            for e in entries:
                wait = reserve(now, self.max_hold)
                if wait is None:
                    dropped += 1
                    size += len(e.line)
                else:
                    keep.append(e)
                    longest = wait
            if longest > 0:
                self.hold(longest)
            reason = TIMEOUT_REASON
        if dropped:
            self.count_drop(reason, dropped, size)
        return keep


@register("limit")
def build(config: Any, ctx: BuildContext) -> Stage:
    b = Block(config, "limit", weak=True)
    rate = b.number("rate")
    burst = b.integer("burst")
    drop = b.boolean("drop")
    by_label = b.string("by_label_name")
    max_labels = b.integer("max_distinct_labels")
    b.done()
    if rate <= 0 or burst <= 0:
        raise StageError("limit stage failed to parse rate or burst")
    if by_label and not drop:
        raise StageError("When ratelimiting by label, drop must be true")
    if by_label and max_labels < MIN_DISTINCT_LABELS:
        log.warning("limit stage: max_distinct_labels was adjusted up to the minimal reasonable value of %d",
                    MIN_DISTINCT_LABELS)
        max_labels = MIN_DISTINCT_LABELS
    return LimitStage(ctx, rate, burst, drop, by_label, max_labels)
