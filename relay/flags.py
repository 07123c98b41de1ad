"""Promtail's command-line flags, the config file they name, and the Config they make together.

Apart from cli.py so that subcommands (relay.backfill) build their config as `loki-relay`
does without importing the command that runs them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import config
from .config import Config, JobConfig, ServerConfig
from .keys import ConfigError, parse_duration
from .kinds import DEFAULT_PUSH_PORT
from .model import LABEL_NAME

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


def build_config(flags: Flags, doc: Any = None) -> Config:
    """The Config of the flags and the file they name. `doc`: that file's document, when the
    caller has read it already (load_yaml)."""
    path = flags.values.get("config.file")
    if doc is None:
        doc = load_yaml(path, flags.on("config.expand-env")) if path else {}
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
