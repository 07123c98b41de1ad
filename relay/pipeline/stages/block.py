"""Reading a stage's YAML block, and Promtail's conversions of extracted values.

Promtail decodes a stage block with mapstructure, so a key of the wrong type is an error and
numbers written as strings are accepted where it "weakly" decodes (drop, limit, sampling).
`Block` gives the same answers, and refuses keys the stage does not know (Promtail ignores
them silently; a typo here would silently change what a stage does).
"""

from __future__ import annotations

import math
import re
from typing import Any

from .base import StageError

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

_GO_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds; raises ValueError with Go's wording."""
    s = text
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total, pos = 0.0, 0
    while pos < len(s):
        m = _GO_DURATION.match(s, pos)
        if m is None or m.group(1) in ("", "."):
            if m is None and re.match(r"[0-9.]+$", s[pos:]):
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def to_str(value: Any) -> str | None:
    """Promtail's getString: an extracted value as text, or None when it has no text form."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    return None


def _go_float(f: float) -> str:
    # strconv.FormatFloat(f, 'f', -1, 64): shortest digits, never an exponent.
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    r = repr(f)
    if "e" not in r and "E" not in r:
        return r.removesuffix(".0")
    from decimal import Decimal

    text = format(Decimal(r), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def to_float(value: Any) -> float | None:
    """Promtail's getFloat: numbers, booleans, and strings holding a float or a Go duration (seconds)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return go_duration(value)
        except ValueError:
            return None
    return None


def _type_name(value: Any) -> str:
    return {dict: "map", list: "list", str: "string", bool: "bool", int: "int", float: "float"}.get(type(value), "value")


class Block:
    """One stage's mapping: typed getters that name the key in their errors, then `done()`."""

    def __init__(self, value: Any, kind: str, *, weak: bool = False) -> None:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise StageError(f"{kind} stage config must be a mapping, got {_type_name(value)}")
        self.data = value
        self.kind = kind
        self.weak = weak  # mapstructure.WeakDecode: "5" is a number, 1 is a string ...
        self.taken: set[str] = set()

    def has(self, key: str) -> bool:
        self.taken.add(key)
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        self.taken.add(key)
        return self.data.get(key)

    def string(self, key: str, default: str | None = None) -> str | None:
        v = self.raw(key)
        if v is None:
            return default
        if isinstance(v, str):
            return v
        if self.weak and isinstance(v, (int, float, bool)):
            return to_str(v)
        raise StageError(f"{key}: expected a string, got {_type_name(v)} {v!r}")

    def boolean(self, key: str, default: bool = False) -> bool:
        v = self.raw(key)
        if v is None:
            return default
        if isinstance(v, bool):
            return v
        if self.weak and isinstance(v, str) and v.lower() in ("true", "false", "1", "0", "t", "f", ""):
            return v.lower() in ("true", "1", "t")
        if self.weak and isinstance(v, int):
            return v != 0
        raise StageError(f"{key}: expected true or false, got {v!r}")

    def number(self, key: str, default: float = 0.0) -> float:
        v = self.raw(key)
        if v is None:
            return default
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if self.weak and isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                pass
        raise StageError(f"{key}: expected a number, got {v!r}")

    def integer(self, key: str, default: int = 0) -> int:
        v = self.raw(key)
        if v is None:
            return default
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if self.weak and isinstance(v, str) and re.fullmatch(r"[+-]?\d+", v.strip()):
            return int(v)
        raise StageError(f"{key}: expected an integer, got {v!r}")

    def done(self) -> None:
        for key in self.data:
            if key not in self.taken:
                raise StageError(f"{key}: unknown key in {self.kind} stage")


def label_sources(value: Any, kind: str, empty_error: str) -> dict[str, str]:
    """A `name: source` mapping (labels, structured_metadata): an empty source means the same name."""
    if value is None:
        raise StageError(empty_error)
    if not isinstance(value, dict):
        raise StageError(f"{kind} stage config must be a mapping of names to sources, got {_type_name(value)}")
    out: dict[str, str] = {}
    for name, source in value.items():
        name = str(name)
        if not LABEL_NAME.fullmatch(name):
            raise StageError(f"invalid label name: {name}")
        if source is not None and not isinstance(source, str):
            raise StageError(f"{name}: expected a source name (string), got {_type_name(source)}")
        out[name] = source or name
    return out


def name_list(value: Any, empty_error: str) -> list[str]:
    """labelallow / labeldrop: a non-empty list of label names."""
    if not value:
        raise StageError(empty_error)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StageError(f"expected a list of label names, got {value!r}")
    return list(value)


_RE2_OPTIONS = None


def compile_regex(expr: str) -> Any:
    """An RE2 regex (Go's regexp syntax: Promtail's engine), compiled once; raises StageError."""
    global _RE2_OPTIONS
    import re2

    if _RE2_OPTIONS is None:
        _RE2_OPTIONS = re2.Options()
        _RE2_OPTIONS.log_errors = False
    try:
        return re2.compile(expr, _RE2_OPTIONS)
    except re2.error as e:
        raise StageError(f"error parsing regexp: {e}: `{expr}`") from None
