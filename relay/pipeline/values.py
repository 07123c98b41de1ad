"""Promtail's conversions of extracted values: getString (`to_string`) and getFloat (`to_float`).

Extracted values are what JSON gives (str, int, float, bool, None, or a nested map or list); stages
that need text or a number from one convert it here, the way Promtail's stages do.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from .gotime import parse_duration


def to_string(value: Any) -> str | None:
    """An extracted value as Promtail's getString gives it; None when it has no text form (map, list, null)."""
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
    """Go's strconv.FormatFloat(f, 'f', -1, 64): shortest digits, never an exponent (1.0 -> "1", 1e21 -> "1000...")."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    if "e" not in text:
        return text.removesuffix(".0")  # -0.0 -> "-0", as Go prints it
    text = format(Decimal(text), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def to_float(value: Any) -> float | None:
    """Promtail's getFloat: numbers, booleans, and strings holding a float or a Go duration (in seconds)."""
    if value is True or value is False:
        return 1.0 if value else 0.0
    if type(value) is int or type(value) is float:
        return float(value)
    if type(value) is str:
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return parse_duration(value)
        except ValueError:
            return None
    return None
