"""Reading one config mapping: known keys taken and checked, inert Promtail keys warned about,
anything else refused with its path. Every config block (core, job kinds, sections) uses this.
"""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

from .model import LABEL_NAME

log = logging.getLogger("relay.config")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key, job or rule."""


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
                 "d": 86400.0, "w": 604800.0, "y": 31536000.0}


def parse_duration(value: Any, path: str) -> float:
    """Go/Prometheus duration ("1s", "500ms", "1h30m") or a plain number of seconds."""
    if isinstance(value, bool):
        raise ConfigError(f"{path}: expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    s = str(value).strip()
    if s in ("0", ""):
        return 0.0
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION.match(s, pos)
        if m is None:
            raise ConfigError(f"{path}: invalid duration {value!r}")
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return total


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?", re.I)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "ki": 1024, "m": 1000**2, "mb": 1000**2,
               "mib": 1024**2, "mi": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "gi": 1024**3,
               "t": 1000**4, "tb": 1000**4, "tib": 1024**4, "ti": 1024**4}


def parse_size(value: Any, path: str) -> int:
    """Bytes as an integer or with a unit ("1MiB", "512KB", "1.5MB")."""
    if isinstance(value, bool):
        raise ConfigError(f"{path}: expected a size, got {value!r}")
    if isinstance(value, int):
        return value
    m = _SIZE.fullmatch(str(value).strip())
    if m is None or (m.group(2) or "").lower() not in _SIZE_UNITS:
        raise ConfigError(f"{path}: invalid size {value!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()])


def boolean(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{path}: expected true or false, got {value!r}")


def integer(value: Any, path: str, lo: int = 0, hi: int = 1 << 62) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{path}: expected an integer in [{lo}, {hi}], got {value!r}")
    return value


def string(value: Any, path: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise ConfigError(f"{path}: expected a string, got {type(value).__name__}")
    return str(value)


def mapping(value: Any, path: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
    return value


def label_map(value: Any, path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in mapping(value, path).items():
        name = str(k)
        if not LABEL_NAME.fullmatch(name):
            raise ConfigError(f"{path}: invalid label name {name!r}")
        out[name] = string(v, f"{path}.{name}")
    return out


def read_secret_file(path: str, where: str) -> str:
    """A credential kept in a file, surrounding whitespace removed."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise ConfigError(f"{where}: cannot read {path}: {e.strerror}") from None


class Keys:
    """Walks one mapping: takes known keys, warns once for inert Promtail keys, refuses the rest."""

    _warned: ClassVar[set[str]] = set()  # where a warning was given, once per process

    def __init__(self, value: Any, path: str, inert: frozenset[str] = frozenset()) -> None:
        self.data = mapping(value, path)
        self.path = path
        self.inert = inert
        self.taken: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.taken.add(key)
        v = self.data.get(key, default)
        return default if v is None else v

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    # Typed getters: the value of `key`, checked, its path in any error.
    def get_bool(self, key: str, default: bool = False) -> bool:
        return boolean(self.get(key, default), self.at(key))

    def get_str(self, key: str, default: str = "") -> str:
        return string(self.get(key, default), self.at(key))

    def get_int(self, key: str, default: int, lo: int = 0, hi: int = 1 << 62) -> int:
        return integer(self.get(key, default), self.at(key), lo, hi)

    def block(self, key: str, inert: frozenset[str] = frozenset()) -> Keys:
        """The mapping under `key`, to walk in turn (call its `done`)."""
        return Keys(self.get(key), self.at(key), inert)

    def done(self) -> None:
        for key in self.data:
            if key in self.taken:
                continue
            where = self.at(str(key))
            if key in self.inert:
                if where not in Keys._warned:
                    Keys._warned.add(where)
                    log.warning("config key %s has no effect in loki-relay; ignored", where)
                continue
            raise ConfigError(f"{where}: unknown configuration key")
