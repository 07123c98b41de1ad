"""The `loki-relay` command, with Promtail's flags (Go style: -flag=value, --flag=value, -flag value)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import platform
import sys
from collections.abc import Callable
from typing import Any

import yaml

from . import __version__, logs
from .config import Config
from .flags import UsageError, build_config, parse_flags
from .keys import ConfigError

USAGE = """usage: loki-relay [flags]

  -config.file=PATH              Promtail-format YAML config (default: embedded defaults)
  -config.expand-env             expand ${VAR} and ${VAR:-default} in the config file
  -client.url=URL                an extra Loki client (default with no config: $LOKI_URL or
                                 http://localhost:3100/loki/api/v1/push)
  -client.tenant-id=ID           tenant for the -client.url client
  -client.external-labels=k=v,.. labels added to every client (a client's own value wins)
  -server.http-listen-port=N     port of the server (metrics, ready); default 9080
  -server.shutdown-delay=DUR     on SIGTERM, serve this long with /ready at 503 before
                                 stopping (for load balancers); default 5s
  -check-syntax                  validate the config and exit (0 = valid, 1 = invalid)
  -dry-run                       print entries to stdout instead of sending them
  -print-config-stderr           print the effective config (secrets masked) to stderr
  -log.level=LEVEL               debug, info, warn or error
  -log.format=FORMAT             logfmt or json
  -version                       print the version and exit
"""

SECRET = "<secret>"


def masked(cfg: Config) -> dict[str, Any]:
    """The effective config as plain data, with every credential replaced."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if hasattr(v, "pattern"):
            return v.pattern
        return v

    doc: dict[str, Any] = plain(cfg)
    for c, client in zip(doc["clients"], cfg.clients, strict=True):
        if client.basic_auth:
            c["basic_auth"] = {"username": client.basic_auth[0], "password": SECRET}
        if client.bearer_token:
            c["bearer_token"] = SECRET
        # Custom headers are how API keys and tokens usually travel: show their names only.
        c["headers"] = {k: SECRET for k in c.get("headers") or {}}
        c["url"] = _mask_url(c["url"])
    _mask_nested(doc)
    return doc


_SECRET_KEYS = {"password", "bearer_token", "access_key", "secret_access_key", "session_token", "token", "secret"}


def _mask_url(url: str) -> str:
    """http://user:password@host/... -> http://user:<secret>@host/..."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.partition("@")
    if not sep or not at or "/" in userinfo or not scheme.isalnum():
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user}:{SECRET}@{host}"


def _mask_nested(v: Any) -> None:
    """Secret-named keys, and the password of any URL (proxy_url, endpoint_url ...), anywhere."""
    if isinstance(v, dict):
        for k, x in v.items():
            if k in _SECRET_KEYS and x:
                v[k] = SECRET
            elif isinstance(x, str):
                v[k] = _mask_url(x)
            else:
                _mask_nested(x)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            if isinstance(x, str):
                v[i] = _mask_url(x)
            else:
                _mask_nested(x)


class _Held(logging.Handler):
    """Keeps the records logged while the config is read, until logging is set up from it."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def replay(self, level: str, fmt: str) -> None:
        logging.getLogger().removeHandler(self)
        logs.setup(level, fmt)
        root = logging.getLogger()
        for r in self.records:
            if r.levelno >= root.level:
                root.handle(r)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["backfill"]:
        from .backfill.cli import main as backfill

        return backfill(args[1:])
    try:
        flags = parse_flags(args)
    except UsageError as e:
        print(f"{e}\n{USAGE}", file=sys.stderr)
        return 2
    if flags.on("help") or flags.on("h"):
        print(USAGE)
        return 0
    if flags.on("version"):
        print(f"loki-relay, version {__version__} (python {platform.python_version()})")
        return 0
    held = _Held()
    logging.getLogger().addHandler(held)
    try:
        cfg = build_config(flags)
    except ConfigError as e:
        held.replay("info", flags.values.get("log.format", "logfmt").lower())
        print(f"invalid config: {e}", file=sys.stderr)
        return 1
    # Warnings from reading the config come out in the configured format and level.
    held.replay(cfg.server.log_level, cfg.server.log_format)
    if flags.on("print-config-stderr"):
        sys.stderr.write(yaml.safe_dump(masked(cfg), sort_keys=False))
    if flags.on("check-syntax"):
        print(f"Valid config file! ({flags.values.get('config.file', 'embedded defaults')})")
        return 0
    from .server import Relay, StartupError
    from .sink.client import dry_run_transport

    runner: Callable[..., int]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop on Linux/macOS
        runner = asyncio.run

    # Start-up objects (modules, config) never die: freeze them out of every collection, and
    # collect less often, since the hot path allocates many short-lived, acyclic objects.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)

    async def run() -> int:
        relay = Relay(cfg, dry_run_transport() if flags.on("dry-run") else None)
        return await relay.run()

    try:
        return runner(run())
    except StartupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
