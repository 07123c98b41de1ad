"""What backfill takes from the rest of the relay, one import line each.

AWS code is moving (relay/sources -> relay/aws); when it does, only these lines change.
"""

from __future__ import annotations

from .. import logs as relay_logs
from ..cli import build_config, parse_flags
from ..config import (
    ClientConfig,
    Config,
    ConfigError,
    JobConfig,
    LimitsConfig,
    ServerConfig,
    parse_duration,
    parse_size,
)
from ..model import CHUNK_SIZE, Chunk, Labels, new_stream
from ..pipeline import Processor
from ..sink.client import SHUTDOWN, LokiClient
from ..sources import aws_lambda, s3logs
from ..sources.lambda_events import CLOUDWATCH, S3Ref
from ..sources.registry import KINDS

LAMBDA_KIND = aws_lambda.KIND
DEFAULT_RULES = aws_lambda.DEFAULT_RULES
LambdaSettings = aws_lambda.LambdaSettings
S3Settings = aws_lambda.S3Settings
S3Clients = aws_lambda.S3Clients
ObjectReader = aws_lambda.ObjectReader
S3ReadError = aws_lambda.S3ReadError

__all__ = [
    "CHUNK_SIZE",
    "CLOUDWATCH",
    "DEFAULT_RULES",
    "KINDS",
    "LAMBDA_KIND",
    "SHUTDOWN",
    "Chunk",
    "ClientConfig",
    "Config",
    "ConfigError",
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
    "new_stream",
    "parse_duration",
    "parse_flags",
    "parse_size",
    "relay_logs",
    "s3logs",
]
