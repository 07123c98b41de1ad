"""What backfill takes from the rest of the relay, one import line each.

Not relay.cli: it imports this package to run `loki-relay backfill`. The config is built
by relay.flags, as `loki-relay` builds it.
"""

from __future__ import annotations

from .. import logs as relay_logs
from ..aws import s3logs
from ..aws.events import CLOUDWATCH, S3Ref
from ..aws.s3 import ObjectReader, S3Clients, S3ReadError, S3Settings
from ..aws.settings import DEFAULT_RULES, LambdaSettings
from ..aws.settings import KIND as LAMBDA_KIND
from ..config import ClientConfig, Config, JobConfig, LimitsConfig, ServerConfig
from ..flags import Flags, build_config, load_yaml
from ..keys import ConfigError, parse_duration, parse_size
from ..kinds import JOB_KINDS as KINDS
from ..model import CHUNK_SIZE, Chunk, Labels, new_stream
from ..pipeline import Processor
from ..sink.client import RATE_LIMITED, SHUTDOWN, LokiClient

__all__ = [
    "CHUNK_SIZE",
    "CLOUDWATCH",
    "DEFAULT_RULES",
    "KINDS",
    "LAMBDA_KIND",
    "RATE_LIMITED",
    "SHUTDOWN",
    "Chunk",
    "ClientConfig",
    "Config",
    "ConfigError",
    "Flags",
    "JobConfig",
    "Labels",
    "LambdaSettings",
    "LimitsConfig",
    "LokiClient",
    "ObjectReader",
    "Processor",
    "S3Clients",
    "S3ReadError",
    "S3Ref",
    "S3Settings",
    "ServerConfig",
    "build_config",
    "load_yaml",
    "new_stream",
    "parse_duration",
    "parse_size",
    "relay_logs",
    "s3logs",
]
