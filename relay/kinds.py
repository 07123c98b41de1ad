"""The one place to add a job kind or a top-level config section.

A job kind is a `scrape_configs` block (`loki_push_api`, `aws_lambda`, ...): the keys
every kind shares (`server`, `labels`, `relabel_configs`, `use_incoming_timestamp`,
`max_send_msg_size`) are read by `relay.config`; the kind reads the rest of its block
into its own typed settings (`JobConfig.settings`). Its HTTP routes live in a module of
`relay.sources.http` with `routes(ingest) -> list[Route]`, named here and imported only
by the server, so that reading config (and the Lambda function) loads no web framework.

A section is a top-level key parsed by another module (`wal`); its value lands in
`Config.extra[name]`.

(Pipeline stage kinds have their own registry: `relay.pipeline.stages.base`.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .aws import firehose as aws_firehose
from .aws import settings as aws_lambda
from .keys import Keys
from .relabel import Rule
from .sink.walconfig import parse_wal

DEFAULT_PUSH_PORT = 3500


def no_settings(_: Keys) -> None:
    """A kind with no keys beyond the shared ones."""


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str  # the key in a scrape config
    default_port: int
    incoming_ts_default: bool  # use_incoming_timestamp when the block does not say
    routes: str  # the relay.sources.http module serving it
    parse_settings: Callable[[Keys], object] = no_settings  # the rest of the block -> JobConfig.settings
    default_rules: Sequence[Rule] = ()  # relabel rules of a job without relabel_configs


JOB_KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind("loki_push_api", DEFAULT_PUSH_PORT, False, "relay.sources.http.push"),
        JobKind(aws_lambda.KIND, aws_lambda.DEFAULT_PORT, True, "relay.sources.http.aws_lambda",
                aws_lambda.parse_block, aws_lambda.DEFAULT_RULES),
        JobKind(aws_firehose.KIND, aws_firehose.DEFAULT_PORT, False, "relay.sources.http.firehose",
                aws_firehose.parse_block, aws_firehose.DEFAULT_RULES),
    )
}

# Top-level sections owned by other modules: key -> parser(value, path).
SECTIONS: dict[str, Callable[[Any, str], object]] = {
    "wal": parse_wal,  # relay.sink.walconfig.WalConfig
}
