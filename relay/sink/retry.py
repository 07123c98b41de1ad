"""When a push to Loki is retried, and after how long: one policy for the relay's clients and
the Lambda function (Promtail's: 429, 5xx and connection errors, exponential backoff with
jitter, Retry-After honoured up to the longest backoff)."""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

from ..config import Backoff


def retriable(status: int, drop_rate_limited: bool = False) -> bool:
    """Whether an answer (0: no answer) is worth another try."""
    if status == 429:
        return not drop_rate_limited
    return status == 0 or status >= 500


def delay(backoff: Backoff, attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number `attempt + 1`."""
    d = min(backoff.max_period, backoff.min_period * (2**attempt))
    d = random.uniform(d / 2, d)  # jitter: senders that failed together retry apart
    if retry_after is not None:
        d = min(max(d, retry_after), backoff.max_period)
    return d


def parse_retry_after(value: str | None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
