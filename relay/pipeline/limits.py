"""Entry limits from `limits_config`, applied the way Loki would judge them."""

from __future__ import annotations

from typing import Any


class LineLimit:
    """max_line_size: lines longer than the limit are dropped, or truncated when asked."""

    def __init__(self, max_bytes: int, truncate: bool) -> None:
        self.max_bytes = max_bytes
        self.truncate = truncate

    def apply(self, msg: Any, out: Any) -> None:
        limit = self.max_bytes
        # Python's len() counts characters; a line can only exceed `limit` bytes if it has
        # more than limit/4 characters, so most lines are cleared without encoding.
        long = [i for i, e in enumerate(msg.entries) if len(e.line) * 4 > limit and len(e.line.encode()) > limit]
        if not long:
            return
        if self.truncate:
            for i in long:
                e = msg.entries[i]
                cut = e.line.encode()[:limit].decode("utf-8", "ignore")
                e.line = cut
            out.truncated += len(long)
            return
        for i in reversed(long):
            out.dropped["line_too_long"] += 1
            out.dropped_bytes["line_too_long"] += msg.entries[i].ByteSize()
            del msg.entries[i]
