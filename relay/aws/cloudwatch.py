"""CloudWatch Logs subscription payloads, shared by Lambda, Kinesis and Firehose inputs.

AWS delivers them as gzip'd JSON: {messageType, owner, logGroup, logStream,
subscriptionFilters, logEvents: [{id, timestamp (ms), message}]}.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from operator import itemgetter
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
    times_ms: tuple[int, int] | None = None  # earliest and latest event timestamp (unix ms); None: no events

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
    events, times_ms = _events(events_raw)
    filters = doc.get("subscriptionFilters") or []
    return CloudWatchPayload(
        message_type=str(doc.get("messageType", "")),
        owner=str(doc.get("owner", "")),
        log_group=str(doc.get("logGroup", "")),
        log_stream=str(doc.get("logStream", "")),
        subscription_filters=[str(f) for f in filters] if isinstance(filters, list) else [],
        events=events,
        times_ms=times_ms,
    )


_EVENT = itemgetter("timestamp", "message")
_FIRST = itemgetter(0)


def _events(raw: list[Any]) -> tuple[list[tuple[int, str]], tuple[int, int] | None]:
    """(timestamp, message) of every log event, and the earliest and latest timestamp; raises
    PayloadError for an event without an integer timestamp or a string message."""
    # The pairs picked in C, the types checked in one comprehension that also lists the
    # timestamps for min/max; the loop below runs only when that fails, to name what is wrong
    # (or to take a bool as a timestamp, as isinstance does).
    try:
        events: list[tuple[int, str]] = list(map(_EVENT, raw))
    except (KeyError, TypeError):  # a missing key, an event that is no object
        events = []
    else:
        stamps = [ts for ts, msg in events if type(ts) is int and type(msg) is str]
        if len(stamps) == len(events):
            return events, (min(stamps), max(stamps)) if stamps else None
        events = []
    for ev in raw:
        if not isinstance(ev, dict):
            raise PayloadError("a log event is not an object")
        ts, msg = ev.get("timestamp"), ev.get("message")
        if not isinstance(ts, int) or not isinstance(msg, str):
            raise PayloadError("a log event lacks an integer timestamp or a string message")
        events.append((ts, msg))
    return events, (min(map(_FIRST, events)), max(map(_FIRST, events))) if events else None


__all__ = ["CloudWatchPayload", "PayloadError", "gunzip", "parse"]
