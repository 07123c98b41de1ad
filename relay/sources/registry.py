"""Job kinds: each input protocol registers how its config block reads, what routes it serves,
and the relabel rules a job of that kind gets when it has none of its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from .. import config
from ..relabel import Rule

if TYPE_CHECKING:
    from ..ingest import Ingest


@dataclass(slots=True)
class SourceKind:
    name: str  # the key in a scrape config: loki_push_api, aws_lambda, aws_firehose
    parse_block: config.JobBlockParser
    routes: Callable[[Ingest], list[BaseRoute]]
    default_rules: list[Rule] = field(default_factory=list)


KINDS: dict[str, SourceKind] = {}


def register(kind: SourceKind) -> SourceKind:
    KINDS[kind.name] = kind
    config.JOB_TYPES[kind.name] = kind.parse_block
    return kind
