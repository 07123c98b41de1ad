"""The `loki-relay` command, with Promtail's flags (Go style: -flag=value, --flag=value, -flag value)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import platform
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import __version__, config, logs
from .config import Config, JobConfig, ServerConfig
from .keys import ConfigError, parse_duration
from .kinds import DEFAULT_PUSH_PORT
from .model import LABEL_NAME

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

_BOOL = {"config.expand-env", "check-syntax", "dry-run", "print-config-stderr", "version", "help", "h",
         "log-config-reverse-order", "inspect"}
_VALUE = {"config.file", "client.url", "client.tenant-id", "client.external-labels", "server.http-listen-port",
          "server.shutdown-delay", "log.level", "log.format"}


class UsageError(Exception):
    pass


@dataclass
class Flags:
    values: dict[str, str] = field(default_factory=dict)
    switches: set[str] = field(default_factory=set)

    def on(self, name: str) -> bool:
        return name in self.switches


def parse_flags(argv: list[str]) -> Flags:
    flags = Flags()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            if i < len(argv):
                raise UsageError(f"unexpected argument {argv[i]!r}")
            break
        if not arg.startswith("-") or arg in ("-", "--"):
            raise UsageError(f"unexpected argument {arg!r}")
        name, eq, value = arg.lstrip("-").partition("=")
        if name in _BOOL:
            if eq and value.lower() not in ("true", "false", "1", "0", "t", "f"):
                raise UsageError(f"invalid boolean value {value!r} for -{name}")
            if not eq or value.lower() in ("true", "1", "t"):
                flags.switches.add(name)
            else:
                flags.switches.discard(name)
        elif name in _VALUE:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                value = argv[i]
                i += 1
            flags.values[name] = value
        else:
            raise UsageError(f"flag provided but not defined: -{name}")
    return flags


def _external_labels(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, value = part.partition("=")
        if not eq or not LABEL_NAME.fullmatch(name.strip()):
            raise ConfigError(f"-client.external-labels: expected name=value pairs, got {part!r}")
        out[name.strip()] = value.strip()
    return out


def default_job() -> JobConfig:
    return JobConfig(name="loki_push", kind="loki_push_api", listen=ServerConfig(http_listen_port=DEFAULT_PUSH_PORT))


# ---- loading the config file -------------------------------------------------------

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-?([^}]*))?\}")


def expand_env(text: str, env: dict[str, str] | None = None) -> str:
    """Promtail's -config.expand-env: ${VAR}, ${VAR:-default} and ${VAR:default}."""
    env = dict(os.environ) if env is None else env

    def sub(m: re.Match[str]) -> str:
        value = env.get(m.group(1))
        if value is None or (value == "" and m.group(2) is not None):
            return m.group(2) or ""
        return value

    return _ENV.sub(sub, text)


def load_yaml(path: str, expand: bool) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    if expand:
        text = expand_env(text)
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None


def build_config(flags: Flags) -> Config:
    path = flags.values.get("config.file")
    doc: Any = load_yaml(path, flags.on("config.expand-env")) if path else {}
    cfg = config.parse_config(doc)
    if not path:
        cfg.jobs = [default_job()]
    from .pipeline.pipeline import build as build_pipeline

    for job in cfg.jobs:  # compiled here to refuse a bad stage at once (and in -check-syntax)
        build_pipeline(job.pipeline_stages, job.name)
    if "server.http-listen-port" in flags.values:
        try:
            cfg.server.http_listen_port = int(flags.values["server.http-listen-port"])
        except ValueError:
            raise ConfigError("-server.http-listen-port: expected a port number") from None
    if "server.shutdown-delay" in flags.values:
        cfg.server.shutdown_delay = parse_duration(flags.values["server.shutdown-delay"], "-server.shutdown-delay")
    for name, allowed in (("log.level", ("debug", "info", "warn", "error")), ("log.format", ("logfmt", "json"))):
        if name in flags.values:
            value = flags.values[name].lower()
            if value not in allowed:
                raise ConfigError(f"-{name}: must be {', '.join(allowed[:-1])} or {allowed[-1]}, got {value!r}")
            setattr(cfg.server, name.replace(".", "_"), value)
    if "client.url" in flags.values:
        cfg.clients.append(config.parse_client({"url": flags.values["client.url"],
                                                "tenant_id": flags.values.get("client.tenant-id", "")}, "-client.url"))
    if not cfg.clients:
        url = os.environ.get("LOKI_URL") or config.DEFAULT_LOKI_URL
        cfg.clients.append(config.parse_client({"url": url, "tenant_id": flags.values.get("client.tenant-id", "")},
                                               "LOKI_URL"))
    if "client.external-labels" in flags.values:
        extra = _external_labels(flags.values["client.external-labels"])
        for c in cfg.clients:
            c.external_labels = {**extra, **c.external_labels}
    return cfg


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
