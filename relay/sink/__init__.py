"""Sinks: batching, the Loki client, fan-out to every client. Nothing here knows about AWS."""

from .client import LokiClient, dry_run_transport
from .fanout import Fanout

__all__ = ["Fanout", "LokiClient", "dry_run_transport"]
