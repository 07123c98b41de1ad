"""Top-level config sections owned by modules other than config.py (parsers by key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SECTIONS: dict[str, Callable[[Any, str], Any]] = {}
