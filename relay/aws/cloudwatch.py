"""CloudWatch Logs subscription payloads, shared by Lambda, Kinesis and Firehose inputs.

AWS delivers them as gzip'd JSON: {messageType, owner, logGroup, logStream,
subscriptionFilters, logEvents: [{id, timestamp (ms), message}]}.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..compress import GZIP_MAGIC, Budget, decompress_bounded


class PayloadError(ValueError):
    """The bytes are not a CloudWatch Logs payload."""


@dataclass(slots=True)
class CloudWatchPayload:
    message_type: str  # DATA_MESSAGE or CONTROL_MESSAGE
    owner: str
    log_group: str
    log_stream: str
    subscription_filters: list[str]
    events: list[tuple[int, str]] = field(default_factory=list)  # (unix ms, message)

    @property
    def is_control(self) -> bool:
        return self.message_type == "CONTROL_MESSAGE"


def gunzip(data: bytes, limit: int | Budget) -> bytes:
    """Decompress gzip, refusing output larger than `limit` bytes (OverflowError), or, given a
    request's Budget, also more than the request has left (BudgetExceeded)."""
    try:
        if isinstance(limit, Budget):
            return limit.decompress(data, 31)
        return decompress_bounded(data, 31, limit)
    except zlib.error as e:
        raise PayloadError(f"bad gzip data: {e}") from None
    except EOFError:
        raise PayloadError("truncated gzip data") from None


def parse(data: bytes, limit: int | Budget = 100 << 20) -> CloudWatchPayload:
    """Decode a payload (gzip or plain JSON); raises PayloadError if it is not one."""
    if data[:2] == GZIP_MAGIC:
        data = gunzip(data, limit)
    try:
        doc: Any = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise PayloadError(f"not JSON: {e}") from None
    if not isinstance(doc, dict) or "logEvents" not in doc or "messageType" not in doc:
        raise PayloadError("not a CloudWatch Logs payload (no messageType/logEvents)")
    events_raw = doc.get("logEvents") or []
    if not isinstance(events_raw, list):
        raise PayloadError("logEvents is not a list")
    events: list[tuple[int, str]] = []
    for ev in events_raw:
        if not isinstance(ev, dict):
            raise PayloadError("a log event is not an object")
        ts, msg = ev.get("timestamp"), ev.get("message")
        if not isinstance(ts, int) or not isinstance(msg, str):
            raise PayloadError("a log event lacks an integer timestamp or a string message")
        events.append((ts, msg))
    filters = doc.get("subscriptionFilters") or []
    return CloudWatchPayload(
        message_type=str(doc.get("messageType", "")),
        owner=str(doc.get("owner", "")),
        log_group=str(doc.get("logGroup", "")),
        log_stream=str(doc.get("logStream", "")),
        subscription_filters=[str(f) for f in filters] if isinstance(filters, list) else [],
        events=events,
    )


__all__ = ["CloudWatchPayload", "PayloadError", "gunzip", "parse"]
