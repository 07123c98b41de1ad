"""`structured_metadata`: attach extracted values, or labels, as structured metadata.

As Promtail: a name found in the extracted map is added from there; a source that is also one
of the entry's labels is moved from the labels to the metadata (so a label can be demoted).
"""

from __future__ import annotations

from typing import Any

from ..values import to_string
from .base import BuildContext, Entry, LabelMemo, Stage, drop_labels, register
from .block import label_sources


class StructuredMetadataStage(Stage):
    kind = "structured_metadata"

    def __init__(self, sources: dict[str, str]) -> None:
        self.pairs = list(sources.items())
        self.sources = frozenset(sources.values())

    def run(self, entries: list[Entry]) -> list[Entry]:
        pairs = self.pairs
        sources = self.sources
        memo: LabelMemo = {}
        prev: dict[str, str] | None = None
        demotes = False
        for e in entries:
            labels = e.labels
            if labels is not prev:  # label dicts are shared: ask once per dict
                prev = labels
                demotes = not sources.isdisjoint(labels)
            extracted = e.extracted
            metadata = e.metadata
            if not demotes:
                for name, source in pairs:
                    value = extracted.get(source)
                    if value is not None:
                        if value.__class__ is not str:
                            value = to_string(value)
                            if value is None:
                                continue
                        metadata[name] = value
                continue
            demoted: list[str] = []
            for name, source in pairs:
                if source in extracted:
                    value = extracted[source]
                    if value.__class__ is not str:
                        value = to_string(value)
                    if value is not None:
                        metadata[name] = value
                if source in labels and source not in demoted:  # moved once, as Promtail's delete
                    metadata[name] = labels[source]
                    demoted.append(source)
            if demoted:
                e.labels = drop_labels(labels, frozenset(demoted), memo)
        return entries


@register("structured_metadata")
def build(config: Any, ctx: BuildContext) -> Stage:
    return StructuredMetadataStage(
        label_sources(config, "structured_metadata", "label stage config cannot be empty"))


# Promtail's deprecated name for the same stage.
register("non_indexed_labels")(build)
