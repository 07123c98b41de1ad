"""Input protocols: each module turns request bytes into `relay.model.Stream`s.

Importing this package registers every job kind (see registry.py).
"""

from . import push  # noqa: F401
from . import aws_lambda  # noqa: F401
from . import firehose  # noqa: F401
from .registry import KINDS, SourceKind, register

__all__ = ["KINDS", "SourceKind", "register"]
