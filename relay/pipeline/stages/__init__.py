"""Promtail's pipeline stage kinds, one module each; importing this package registers them all in KINDS."""

from . import (  # noqa: F401
    decolorize,
    docker,
    drop,
    eventlogmessage,
    geoip,
    json,
    labelallow,
    labeldrop,
    labels,
    limit,
    logfmt,
    match,
    metrics,
    multiline,
    output,
    pack,
    regex,
    replace,
    sampling,
    static_labels,
    structured_metadata,
    template,
    tenant,
    timestamp,
)
from .base import KINDS, BuildContext, Entry, Stage, StageError, register

__all__ = ["KINDS", "BuildContext", "Entry", "Stage", "StageError", "register"]
