"""Top-level config sections owned by modules other than config.py (parsers by key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .sink.wal import parse_wal

SECTIONS: dict[str, Callable[[Any, str], Any]] = {
    "wal": parse_wal,  # write-ahead log: relay.sink.wal.WalConfig
}
