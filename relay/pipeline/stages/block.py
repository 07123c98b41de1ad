"""Reading a stage's YAML block the way Promtail's mapstructure decoding does, and refusing typos.

A missing or null key is the zero value (or the stage's default); a value of the wrong type is an
error naming the key, in mapstructure's words. Stages that Promtail decodes "weakly" (`weak=True`)
also take numbers and booleans written as strings and the like, as mapstructure.WeakDecode does.
Unlike Promtail, which ignores keys it does not know, `done()` refuses them: a typo would otherwise
silently change what a stage does.
"""

from __future__ import annotations

import re
from typing import Any

from ... import regexp
from ..values import format_float
from .base import StageError

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# strconv.ParseInt with base 0 (what weak decoding uses): decimal, 0x.., 0o.., 0b.., or 0.. for octal.
_GO_INT = re.compile(r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|0(?:_?[0-7])*|[1-9](?:_?[0-9])*)")
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def type_name(value: Any) -> str:
    """The Go kind mapstructure names in its errors for a decoded YAML value."""
    return {dict: "map", list: "slice", str: "string", bool: "bool", int: "int", float: "float64"}.get(
        type(value), type(value).__name__)


def _go_int(text: str) -> int:
    if _GO_INT.fullmatch(text) is None:
        raise ValueError(text)
    sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text.lstrip("+"))
    digits = digits.replace("_", "")
    if len(digits) > 1 and digits[0] == "0" and digits[1] not in "xXoObB":
        return sign * int(digits, 8)
    return sign * int(digits, 0)


class Block:
    """One stage's mapping: typed getters that name the key in their errors, then `done()`."""

    def __init__(self, value: Any, kind: str, *, weak: bool = False) -> None:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise StageError(f"{kind} stage config: expected a map, got '{type_name(value)}'")
        self.data: dict[Any, Any] = value
        self.kind = kind
        self.weak = weak  # mapstructure.WeakDecode
        self.taken: set[str] = set()

    def raw(self, key: str) -> Any:
        self.taken.add(key)
        return self.data.get(key)

    def has(self, key: str) -> bool:
        return self.raw(key) is not None

    def done(self) -> None:
        """Refuse the keys no getter asked for."""
        for key in self.data:
            if key not in self.taken:
                raise StageError(f"unknown key '{key}' in {self.kind} stage")

    def _unconvertible(self, key: str, want: str, value: Any) -> StageError:
        return StageError(f"'{key}' expected type '{want}', got unconvertible type '{type_name(value)}'")

    def string(self, key: str, default: str = "") -> str:
        value = self.raw(key)
        return default if value is None else self._string(key, value)

    def opt_string(self, key: str) -> str | None:
        """A `*string` key: None when absent or null."""
        value = self.raw(key)
        return None if value is None else self._string(key, value)

    def _string(self, key: str, value: Any) -> str:
        if isinstance(value, str):
            return value
        if self.weak:
            if isinstance(value, bool):
                return "1" if value else "0"
            if isinstance(value, int):
                return str(value)
            if isinstance(value, float):
                return format_float(value)
        raise self._unconvertible(key, "string", value)

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if self.weak:
            if isinstance(value, (int, float)):
                return value != 0
            if isinstance(value, str):
                if value in _GO_TRUE:
                    return True
                if value in _GO_FALSE or value == "":
                    return False
                raise StageError(f"cannot parse '{key}' as bool: strconv.ParseBool: parsing \"{value}\": invalid syntax")
        raise self._unconvertible(key, "bool", value)

    def integer(self, key: str, default: int = 0) -> int:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            if self.weak:
                return int(value)
        elif isinstance(value, int):
            return value
        elif isinstance(value, float):
            return int(value)  # mapstructure truncates a float into an int, weak or not
        elif self.weak and isinstance(value, str):
            try:
                return _go_int(value or "0")
            except ValueError:
                raise StageError(
                    f"cannot parse '{key}' as int: strconv.ParseInt: parsing \"{value}\": invalid syntax") from None
        raise self._unconvertible(key, "int", value)

    def number(self, key: str, default: float = 0.0) -> float:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            if self.weak:
                return float(value)
        elif isinstance(value, (int, float)):
            return float(value)
        elif self.weak and isinstance(value, str):
            try:
                if value.strip() != value:
                    raise ValueError(value)
                return float(value or "0")
            except ValueError:
                raise StageError(
                    f"cannot parse '{key}' as float: strconv.ParseFloat: parsing \"{value}\": invalid syntax") from None
        raise self._unconvertible(key, "float64", value)

    def string_list(self, key: str) -> list[str]:
        value = self.raw(key)
        if value is None:
            return []
        if not isinstance(value, list):
            if not self.weak:
                raise StageError(f"'{key}': source data must be an array or slice, got {type_name(value)}")
            value = [] if value == {} else [value]  # weak decoding lifts one value into a list
        out = []
        for i, item in enumerate(value):
            out.append("" if item is None else self._string(f"{key}[{i}]", item))
        return out

    def string_map(self, key: str) -> dict[str, str]:
        """A `map[string]string` key; a null value is "" (Promtail: use the name)."""
        value = self.raw(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise StageError(f"'{key}' expected a map, got '{type_name(value)}'")
        out = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise self._unconvertible(f"{key}[{name}]", "string", name)
            out[name] = "" if item is None else self._string(f"{key}[{name}]", item)
        return out


def label_sources(value: Any, kind: str, empty_error: str) -> dict[str, str]:
    """A `name: source` mapping (labels, structured_metadata): an empty source means the same name."""
    if value is None:
        raise StageError(empty_error)
    if not isinstance(value, dict):
        raise StageError(f"{kind} stage config must be a mapping of names to sources, got {type_name(value)}")
    out: dict[str, str] = {}
    for name, source in value.items():
        name = str(name)
        if not LABEL_NAME.fullmatch(name):
            raise StageError(f"invalid label name: {name}")
        if source is not None and not isinstance(source, str):
            raise StageError(f"{name}: expected a source name (string), got {type_name(source)}")
        out[name] = source or name
    return out


def name_list(value: Any, empty_error: str) -> list[str]:
    """labelallow / labeldrop: a non-empty list of label names."""
    if not value:
        raise StageError(empty_error)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StageError(f"expected a list of label names, got {value!r}")
    return list(value)


def compile_regex(expression: str, error: str) -> Any:
    """An RE2 regex (Go's regexp syntax, Promtail's engine), or StageError `error: <Go's reason>`."""
    try:
        return regexp.compile_regex(expression)
    except regexp.RegexpError as err:
        raise StageError(f"{error}: {err}") from None
