"""`tenant`: route entries to a tenant, from an extracted value, a label or a fixed value.

It sets Promtail's reserved `__tenant_id__` label, which wins over the request's X-Scope-OrgID
and the client's tenant_id; the label itself is never sent.
"""

from __future__ import annotations

from typing import Any

from ...model import TENANT_LABEL
from ..values import to_string
from .base import BuildContext, Entry, LabelMemo, Stage, StageError, register, set_labels
from .block import Block


class TenantStage(Stage):
    kind = "tenant"

    def __init__(self, source: str, label: str, value: str) -> None:
        self.source = source
        self.label = label
        self.value = value

    def run(self, entries: list[Entry]) -> list[Entry]:
        memo: LabelMemo = {}
        if self.value:
            pairs = ((TENANT_LABEL, self.value),)
            for e in entries:
                e.labels = set_labels(e.labels, pairs, memo)
        elif self.label:
            label = self.label
            for e in entries:
                tenant = e.labels.get(label)
                if tenant:
                    e.labels = set_labels(e.labels, ((TENANT_LABEL, tenant),), memo)
        else:
            source = self.source
            for e in entries:
                if source in e.extracted:
                    tenant = to_string(e.extracted[source])
                    if tenant:
                        e.labels = set_labels(e.labels, ((TENANT_LABEL, tenant),), memo)
        return entries


@register("tenant")
def build(config: Any, ctx: BuildContext) -> Stage:
    b = Block(config, "tenant")
    source, label, value = b.string("source"), b.string("label"), b.string("value")
    b.done()
    if not (source or label or value):
        raise StageError("label, source or value config are required")
    if sum(map(bool, (source, label, value))) > 1:
        raise StageError("label, source and value are mutually exclusive: you should set source, value or label but not all")
    return TenantStage(source, label, value)
