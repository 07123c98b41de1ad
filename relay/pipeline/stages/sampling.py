"""`sampling`: keep each entry with probability `rate` (0.0 to 1.0); the rest are dropped and counted."""

from __future__ import annotations

import random
from typing import Any

from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block


class SamplingStage(Stage):
    kind = "sampling"

    def __init__(self, ctx: BuildContext, rate: float, reason: str) -> None:
        self.rate = rate
        self.reason = reason
        self.count_drop = ctx.count_drop
        self.random = random.Random().random

    def run(self, entries: list[Entry]) -> list[Entry]:
        rate, rnd = self.rate, self.random
        keep = [e for e in entries if rnd() < rate]
        if len(keep) != len(entries):
            kept = {id(e) for e in keep}
            self.count_drop(self.reason, len(entries) - len(keep), sum(len(e.line) for e in entries if id(e) not in kept))
        return keep


@register("sampling")
def build(config: Any, ctx: BuildContext) -> Stage:
    b = Block(config, "sampling", weak=True)
    rate = b.number("rate")
    reason = b.string("drop_counter_reason") or "sampling_stage"
    b.done()
    if not 0.0 <= rate <= 1.0:
        raise StageError(f"sampling stage failed to parse rate,Sampling Rate must be between 0.0 and 1.0, received {rate:f}")
    return SamplingStage(ctx, rate, reason)
