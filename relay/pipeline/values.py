"""Small shared helpers for stages: values of the extracted map as strings, and reading a stage's YAML block.

Promtail decodes a stage block with mapstructure (no weak typing): a missing or null key is the zero value,
unknown keys are ignored, a value of the wrong type is an error naming the key. `Block` does the same.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from .stages.base import StageError


def to_string(value: Any) -> str | None:
    """An extracted value as Promtail's getString gives it; None when Promtail could not convert it.

    Floats print in plain decimal, shortest form (Go's FormatFloat 'f', -1): 1.0 -> "1", 1e21 -> "1000...".
    """
    if type(value) is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    if type(value) is float:
        return format_float(value)
    return None


def format_float(value: float) -> str:
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if math.isnan(value) or math.isinf(value):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(value)]
    text = repr(value)
    if "e" not in text:
        return text
    return format(Decimal(text), "f")


def _type_name(value: Any) -> str:
    return {dict: "map", list: "slice", str: "string", bool: "bool", int: "int", float: "float64"}.get(
        type(value), type(value).__name__
    )


class Block:
    """A stage's config block, read key by key with mapstructure's typing rules."""

    def __init__(self, block: Any) -> None:
        if block is None:
            block = {}
        if not isinstance(block, dict):
            raise StageError(f"stage config: expected a map, got '{_type_name(block)}'")
        self.raw: dict[str, Any] = block

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def string(self, key: str, default: str = "") -> str:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise StageError(f"'{key}' expected type 'string', got unconvertible type '{_type_name(value)}'")
        return value

    def opt_string(self, key: str) -> str | None:
        """A `*string` key: None when absent or null."""
        if self.raw.get(key) is None:
            return None
        return self.string(key)

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise StageError(f"'{key}' expected type 'bool', got unconvertible type '{_type_name(value)}'")
        return value

    def weak_boolean(self, key: str, default: bool = False) -> bool:
        """A bool decoded weakly (mapstructure.WeakDecode): also "true"/"1"/1."""
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return value != 0
        if isinstance(value, str):
            lowered = value.lower()
            if lowered in ("1", "t", "true"):
                return True
            if lowered in ("0", "f", "false", ""):
                return False
        raise StageError(f"cannot parse '{key}' as bool: {value!r}")

    def integer(self, key: str, default: int = 0) -> int:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise StageError(f"'{key}' expected type 'int', got unconvertible type '{_type_name(value)}'")
        return value

    def string_list(self, key: str) -> list[str]:
        value = self.raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise StageError(f"'{key}': source data must be an array or slice, got {_type_name(value)}")
        out = []
        for i, item in enumerate(value):
            if item is None:
                item = ""
            if not isinstance(item, str):
                raise StageError(f"'{key}[{i}]' expected type 'string', got unconvertible type '{_type_name(item)}'")
            out.append(item)
        return out

    def string_map(self, key: str) -> dict[str, str]:
        """A `map[string]string` key; a null value is "" (Promtail: use the name)."""
        value = self.raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise StageError(f"'{key}' expected a map, got '{_type_name(value)}'")
        out = {}
        for name, item in value.items():
            if item is None:
                item = ""
            if not isinstance(name, str) or not isinstance(item, str):
                bad = item if isinstance(name, str) else name
                raise StageError(
                    f"'{key}[{name}]' expected type 'string', got unconvertible type '{_type_name(bad)}'"
                )
            out[name] = item
        return out
