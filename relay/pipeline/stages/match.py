"""`match`: run nested stages on, or drop, the entries a Loki selector matches.

The label part of the selector depends only on the label set, so its answer is kept per label
set; only line filters run per entry. `action: keep` (default) sends matching entries through
`stages`, the others pass by unchanged; `action: drop` drops matching entries, counted with
`drop_counter_reason` (default `match_stage`).
"""

from __future__ import annotations

from typing import Any

from ...cache import BoundedCache
from .. import selector as sel
from .base import BuildContext, Entry, Stage, StageError, register
from .block import Block

CACHE_SIZE = 10_000


class MatchStage(Stage):
    kind = "match"

    def __init__(self, ctx: BuildContext, selector: sel.Selector, nested: Stage | None, reason: str) -> None:
        self.selector = selector
        self.filter = selector.line_filter()
        self.nested = nested
        self.reason = reason
        self.count_drop = ctx.count_drop
        self.flush_every = nested.flush_every if nested is not None else 0.0
        self._by_labels: BoundedCache[frozenset[tuple[str, str]], bool] = BoundedCache(CACHE_SIZE)

    def _labels_match(self, labels: dict[str, str]) -> bool:
        if not self.selector.matchers:
            return True
        key = frozenset(labels.items())
        hit = self._by_labels.get(key)
        if hit is None:
            hit = self._by_labels.put(key, self.selector.match_labels(labels))
        return hit

    def _matching(self, entries: list[Entry]) -> list[bool]:
        flags: list[bool] = []
        line_ok = self.filter
        prev: dict[str, str] | None = None
        prev_hit = False
        for e in entries:
            labels = e.labels
            # Entries of one batch nearly always share a label set: compare before hashing.
            if prev is None or (labels is not prev and labels != prev):
                prev_hit = self._labels_match(labels)
                prev = labels
            flags.append(prev_hit and (line_ok is None or line_ok(e.line)))
        return flags

    def run(self, entries: list[Entry]) -> list[Entry]:
        if not entries:
            return entries
        flags = self._matching(entries)
        if self.nested is None:  # action: drop
            keep = [e for e, hit in zip(entries, flags, strict=False) if not hit]
            if len(keep) != len(entries):
                size = sum(len(e.line) for e, hit in zip(entries, flags, strict=False) if hit)
                self.count_drop(self.reason, len(entries) - len(keep), size)
            return keep
        matched = [e for e, hit in zip(entries, flags, strict=False) if hit]
        if not matched:
            return entries
        done = self.nested.run(matched)
        if len(matched) == len(entries):
            return done
        # Keep the batch's order: put the nested stages' survivors back where they were.
        survivors = {id(e) for e in done}
        if len(survivors) != len(done) or not survivors <= {id(e) for e in matched}:
            return [e for e, hit in zip(entries, flags, strict=False) if not hit] + done  # new entries (multiline)
        return [e for e, hit in zip(entries, flags, strict=False) if not hit or id(e) in survivors]

    def flush_expired(self) -> list[Entry]:
        return self.nested.flush_expired() if self.nested is not None else []

    def flush(self) -> list[Entry]:
        return self.nested.flush() if self.nested is not None else []


@register("match")
def build(config: Any, ctx: BuildContext) -> Stage:
    if config is None:
        raise StageError("match stage config cannot be empty")
    b = Block(config, "match")
    name = b.opt_string("pipeline_name")
    selector_text = b.string("selector")
    stages = b.raw("stages")
    action = b.string("action") or "keep"
    reason = b.string("drop_counter_reason") or "match_stage"
    b.done()
    if name == "":
        raise StageError("match stage pipeline name can be omitted but cannot be an empty string")
    if not selector_text:
        raise StageError("selector statement required for match stage")
    if action not in ("keep", "drop"):
        raise StageError("match stage action should be 'keep' or 'drop'")
    if stages is not None and not isinstance(stages, list):
        raise StageError("stages: expected a list of stages")
    if action == "keep" and not stages:
        raise StageError("match stage requires at least one additional stage to be defined in '- stages'")
    if action == "drop" and stages:
        raise StageError("match stage configured to drop entries cannot contains stages")
    try:
        selector = sel.parse(selector_text)
    except sel.SelectorError as e:
        raise StageError(f"invalid selector syntax for match stage: {e}") from None
    nested = None
    if action == "keep":
        assert ctx.build_nested is not None
        nested = ctx.build_nested(stages, name or "")
    return MatchStage(ctx, selector, nested, reason)
