"""Promtail's pipeline stage kinds, one module each; importing this package registers them all in KINDS."""

from . import (  # noqa: F401
    drop,
    labelallow,
    labeldrop,
    labels,
    limit,
    match,
    metrics,
    sampling,
    static_labels,
    structured_metadata,
    tenant,
)
from .base import KINDS, BuildContext, Entry, Stage, StageError, register

__all__ = ["KINDS", "BuildContext", "Entry", "Stage", "StageError", "register"]
