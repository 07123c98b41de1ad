"""The `wal` config section (the write-ahead log itself: `relay.sink.wal`).

    wal:
      enabled: false
      dir: /var/lib/loki-relay/wal
      max_size: 1GiB        # all segments together; over it, pushes get backpressure
      sync: always          # or an fsync interval such as 1s
      segment_size: 32MiB
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..keys import ConfigError, Keys, parse_duration, parse_size


@dataclass(slots=True)
class WalConfig:
    enabled: bool = False
    dir: str = ""
    max_size: int = 1 << 30  # all segments together; over it, pushes get backpressure
    sync: str = "always"  # "always", or an fsync interval
    sync_interval: float = 0.0  # seconds, when sync is an interval
    segment_size: int = 32 << 20


def parse_wal(value: Any, path: str) -> WalConfig:
    k = Keys(value, path)
    c = WalConfig()
    c.enabled = k.get_bool("enabled")
    c.dir = k.get_str("dir")
    c.max_size = parse_size(k.get("max_size", c.max_size), k.at("max_size"))
    sync = k.get("sync", "always")
    if isinstance(sync, str) and sync.strip().lower() == "always":
        c.sync = "always"
    else:
        c.sync_interval = parse_duration(sync, k.at("sync"))
        if c.sync_interval <= 0:
            raise ConfigError(f"{k.at('sync')}: expected `always` or a positive duration, got {sync!r}")
        c.sync = str(sync)
    c.segment_size = parse_size(k.get("segment_size", min(c.segment_size, max(c.max_size // 4, 1 << 20))),
                                k.at("segment_size"))
    k.done()
    if c.enabled and not c.dir:
        raise ConfigError(f"{k.at('dir')}: the WAL needs a directory")
    if c.enabled and c.segment_size > c.max_size:
        raise ConfigError(f"{k.at('segment_size')}: larger than max_size")
    return c
