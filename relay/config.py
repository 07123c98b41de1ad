"""Promtail-format YAML configuration: parsing, defaults and validation.

Keys that belong to Promtail but mean nothing here (positions, grpc_listen_port,
file targets ...) are accepted with one warning each; any other unknown key is
refused with its path, so a typo never silently changes behaviour.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import relabel
from .auth import ListenerAuth, parse_auth
from .keys import ConfigError as ConfigError  # what parse_config raises: callers catch it from here
from .keys import (
    Keys,
    boolean,
    integer,
    label_map,
    mapping,
    parse_duration,
    parse_size,
    read_secret_file,
    string,
)
from .kinds import DEFAULT_PUSH_PORT, JOB_KINDS, SECTIONS, JobKind

DEFAULT_SERVER_PORT = 9080
DEFAULT_LOKI_URL = "http://localhost:3100/loki/api/v1/push"
DEFAULT_MAX_MSG_SIZE = 100 << 20


# ---- the configuration ---------------------------------------------------------------

@dataclass(slots=True)
class TLSFiles:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""
    insecure_skip_verify: bool = False


@dataclass(slots=True)
class Backoff:
    min_period: float = 0.5
    max_period: float = 300.0
    max_retries: int = 10


@dataclass(slots=True)
class ClientConfig:
    url: str
    name: str = ""
    tenant_id: str = ""
    batchwait: float = 1.0
    batchsize: int = 1 << 20
    timeout: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)
    external_labels: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    basic_auth: tuple[str, str] | None = None
    bearer_token: str = ""
    tls: TLSFiles = field(default_factory=TLSFiles)
    drop_rate_limited_batches: bool = False
    proxy_url: str = ""


@dataclass(slots=True)
class ServerConfig:
    http_listen_address: str = "0.0.0.0"
    http_listen_port: int = DEFAULT_SERVER_PORT
    log_level: str = "info"
    log_format: str = "logfmt"
    # On SIGTERM: shutdown_delay of serving with /ready at 503 (so load balancers stop routing
    # here), then graceful_shutdown_timeout for in-flight requests and the flush. 5s + 20s fits
    # the 30s default termination grace of Kubernetes and ECS, with 5s to spare.
    shutdown_delay: float = 5.0
    graceful_shutdown_timeout: float = 20.0
    unready_on_backpressure: bool = False  # /ready answers 503 while the buffers are full
    register_instrumentation: bool = True
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    auth: ListenerAuth | None = None  # credentials a push listener requires (None = open)
    # Connection limits (relay.connections): slow or idle senders cannot hold a listener.
    read_header_timeout: float = 10.0  # the request head must arrive within this
    read_timeout: float = 30.0  # the body, within this after the head
    idle_timeout: float = 120.0  # a kept-alive connection with no request is closed after this
    max_header_bytes: int = 1 << 20
    conn_limit: int = 4096  # open connections per listener; 0 = no limit


@dataclass(slots=True)
class JobConfig:
    """One scrape_configs entry: a listener of one input type and its label processing."""

    name: str
    kind: str  # "loki_push_api", "aws_lambda", "aws_firehose"
    listen: ServerConfig
    labels: dict[str, str] = field(default_factory=dict)
    relabel: list[relabel.Rule] = field(default_factory=list)
    has_relabel: bool = False  # relabel_configs given (even empty): AWS jobs then skip their default rules
    use_incoming_timestamp: bool = False
    max_message_size: int = DEFAULT_MAX_MSG_SIZE
    settings: object = None  # the kind's own settings (relay.kinds: JobKind.parse_settings)
    # Promtail's pipeline_stages as written (a list of one-key mappings); relay.pipeline compiles them.
    pipeline_stages: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class LimitsConfig:
    max_line_size: int = 0  # bytes; 0 means no limit (as Promtail)
    max_line_size_truncate: bool = False
    # Loki's own per-stream label limits (its defaults): a stream Loki would refuse is refused here,
    # so one bad stream never makes Loki reject a whole batch.
    max_label_names_per_series: int = 15
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    # Loki's time limits (its defaults), in seconds: entries older than reject_old_samples_max_age
    # or further ahead than creation_grace_period are refused at intake, as Loki would refuse
    # them. 0 turns a check off (as does reject_old_samples: false for the first).
    reject_old_samples: bool = True
    reject_old_samples_max_age: float = 168 * 3600.0
    creation_grace_period: float = 600.0
    # Bytes held for delivery (queued, in flight, or retried), all tenants / one tenant. Over
    # either, a push is refused with 429 (503 for AWS sources) instead of buffered.
    max_buffered_bytes: int = 256 << 20
    max_buffered_bytes_per_tenant: int = 64 << 20
    # How long a request waits for room before it is refused. Holding the sender briefly slows
    # it to the rate Loki takes (as TCP would) instead of making it resend the same bytes.
    backpressure_wait: float = 2.0


@dataclass(slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    clients: list[ClientConfig] = field(default_factory=list)
    jobs: list[JobConfig] = field(default_factory=list)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    extra: dict[str, Any] = field(default_factory=dict)  # top-level sections owned by other modules (wal, ...)


# Promtail keys that are valid in Promtail but have no meaning for a relay.
_INERT_TOP = frozenset({"positions", "target_config", "tracing", "options", "global"})
_INERT_SERVER = frozenset({
    "grpc_listen_port", "grpc_listen_address", "grpc_listen_network", "grpc_listen_conn_limit", "http_listen_network",
    "http_server_write_timeout",
    "grpc_server_max_recv_msg_size", "grpc_server_max_send_msg_size", "grpc_server_max_concurrent_streams",
    "grpc_server_max_connection_idle", "grpc_server_max_connection_age", "grpc_server_max_connection_age_grace",
    "grpc_server_keepalive_time", "grpc_server_keepalive_timeout", "grpc_tls_config", "tls_cipher_suites",
    "tls_min_version", "log_source_ips_enabled", "log_source_ips_header", "log_source_ips_regex",
    "log_request_at_info_level_enabled", "http_path_prefix", "external_url", "health_check_target", "disable",
    "enable_runtime_reload", "profiling_enabled", "log_request_headers", "log_request_exclude_headers_list",
})
_INERT_CLIENT = frozenset({"stream_lag_labels", "enable_http2", "follow_redirects", "no_proxy", "proxy_from_environment",
                           "proxy_connect_header", "oauth2", "authorization"})
_INERT_SCRAPE = frozenset({"static_configs", "file_sd_configs", "kubernetes_sd_configs",
                           "consul_sd_configs", "consulagent_sd_configs", "docker_sd_configs", "journal", "syslog",
                           "gcplog", "windows_events", "kafka", "gelf", "cloudflare", "heroku_drain", "azure_event_hubs",
                           "encoding", "decompression"})
_INERT_LIMITS = frozenset({"readline_rate_enabled", "readline_rate", "readline_burst", "readline_rate_drop", "max_streams"})


def _tls(value: Any, path: str) -> TLSFiles:
    k = Keys(value, path, frozenset({"min_version", "max_version"}))
    t = TLSFiles(
        ca_file=string(k.get("ca_file"), k.at("ca_file")),
        cert_file=string(k.get("cert_file"), k.at("cert_file")),
        key_file=string(k.get("key_file"), k.at("key_file")),
        server_name=string(k.get("server_name"), k.at("server_name")),
        insecure_skip_verify=boolean(k.get("insecure_skip_verify", False), k.at("insecure_skip_verify")),
    )
    k.done()
    if bool(t.cert_file) != bool(t.key_file):
        raise ConfigError(f"{path}: cert_file and key_file go together")
    return t


def parse_server(value: Any, path: str, default_port: int) -> ServerConfig:
    k = Keys(value, path, _INERT_SERVER)
    s = ServerConfig(http_listen_port=default_port)
    s.http_listen_address = string(k.get("http_listen_address", "0.0.0.0"), k.at("http_listen_address")) or "0.0.0.0"
    s.http_listen_port = integer(k.get("http_listen_port", default_port), k.at("http_listen_port"), 0, 65535)
    s.log_level = string(k.get("log_level", "info"), k.at("log_level")).lower()
    if s.log_level not in ("debug", "info", "warn", "error"):
        raise ConfigError(f"{k.at('log_level')}: must be debug, info, warn or error")
    s.log_format = string(k.get("log_format", "logfmt"), k.at("log_format")).lower()
    if s.log_format not in ("logfmt", "json"):
        raise ConfigError(f"{k.at('log_format')}: must be logfmt or json")
    s.graceful_shutdown_timeout = parse_duration(k.get("graceful_shutdown_timeout", "20s"), k.at("graceful_shutdown_timeout"))
    s.shutdown_delay = parse_duration(k.get("shutdown_delay", "5s"), k.at("shutdown_delay"))
    s.unready_on_backpressure = boolean(k.get("unready_on_backpressure", False), k.at("unready_on_backpressure"))
    s.register_instrumentation = boolean(k.get("register_instrumentation", True), k.at("register_instrumentation"))
    for key, attr in (("http_server_read_header_timeout", "read_header_timeout"),
                      ("http_server_read_timeout", "read_timeout"), ("http_server_idle_timeout", "idle_timeout")):
        setattr(s, attr, parse_duration(k.get(key, getattr(s, attr)), k.at(key)))
        if getattr(s, attr) < 0:
            raise ConfigError(f"{k.at(key)}: must not be negative")
    s.max_header_bytes = parse_size(k.get("http_server_max_header_bytes", s.max_header_bytes),
                                    k.at("http_server_max_header_bytes"))
    s.conn_limit = integer(k.get("http_listen_conn_limit", s.conn_limit), k.at("http_listen_conn_limit"))
    if k.has("http_tls_config"):
        t = Keys(k.get("http_tls_config"), k.at("http_tls_config"), frozenset({"client_auth_type"}))
        s.tls_cert_file = string(t.get("cert_file"), t.at("cert_file"))
        s.tls_key_file = string(t.get("key_file"), t.at("key_file"))
        s.tls_client_ca_file = string(t.get("client_ca_file"), t.at("client_ca_file"))
        t.done()
        if bool(s.tls_cert_file) != bool(s.tls_key_file):
            raise ConfigError(f"{t.path}: cert_file and key_file go together")
    if k.has("auth"):
        s.auth = parse_auth(k.get("auth"), k.at("auth"))
    k.done()
    return s


def parse_client(value: Any, path: str) -> ClientConfig:
    k = Keys(value, path, _INERT_CLIENT)
    url = string(k.get("url"), k.at("url"))
    if not url:
        raise ConfigError(f"{k.at('url')}: a client needs a url")
    if not re.match(r"https?://[^/]", url):
        raise ConfigError(f"{k.at('url')}: must be an http:// or https:// URL, got {url!r}")
    c = ClientConfig(url=url)
    c.name = string(k.get("name"), k.at("name"))
    c.tenant_id = string(k.get("tenant_id"), k.at("tenant_id"))
    c.batchwait = parse_duration(k.get("batchwait", "1s"), k.at("batchwait"))
    c.batchsize = parse_size(k.get("batchsize", 1 << 20), k.at("batchsize"))
    c.timeout = parse_duration(k.get("timeout", "10s"), k.at("timeout"))
    if k.has("backoff_config"):
        b = Keys(k.get("backoff_config"), k.at("backoff_config"))
        c.backoff = Backoff(
            min_period=parse_duration(b.get("min_period", "500ms"), b.at("min_period")),
            max_period=parse_duration(b.get("max_period", "5m"), b.at("max_period")),
            max_retries=integer(b.get("max_retries", 10), b.at("max_retries")),
        )
        b.done()
    c.external_labels = label_map(k.get("external_labels"), k.at("external_labels"))
    c.headers = {str(h): string(v, k.at(f"headers.{h}")) for h, v in mapping(k.get("headers"), k.at("headers")).items()}
    if k.has("basic_auth"):
        b = Keys(k.get("basic_auth"), k.at("basic_auth"))
        user = string(b.get("username"), b.at("username"))
        password = string(b.get("password"), b.at("password"))
        if b.has("password_file"):
            password = read_secret_file(string(b.get("password_file"), b.at("password_file")), b.at("password_file"))
        b.done()
        c.basic_auth = (user, password)
    c.bearer_token = string(k.get("bearer_token"), k.at("bearer_token"))
    if k.has("bearer_token_file"):
        c.bearer_token = read_secret_file(string(k.get("bearer_token_file"), k.at("bearer_token_file")), k.at("bearer_token_file"))
    if c.basic_auth and c.bearer_token:
        raise ConfigError(f"{path}: basic_auth and bearer_token are mutually exclusive")
    if k.has("tls_config"):
        c.tls = _tls(k.get("tls_config"), k.at("tls_config"))
    c.drop_rate_limited_batches = boolean(k.get("drop_rate_limited_batches", False), k.at("drop_rate_limited_batches"))
    c.proxy_url = string(k.get("proxy_url"), k.at("proxy_url"))
    k.done()
    return c


def _compile_relabel(raw: Any, where: str) -> list[relabel.Rule]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list of relabel rules")
    try:
        return relabel.compile_rules(raw)
    except relabel.RelabelError as e:
        raise ConfigError(f"{where}: {e}") from None


def _common_job_keys(k: Keys, job: JobConfig, kind: JobKind) -> None:
    """Keys every job kind shares: server, labels, use_incoming_timestamp, max_send_msg_size, relabel_configs."""
    job.listen = parse_server(k.get("server"), k.at("server"), kind.default_port)
    job.labels = label_map(k.get("labels"), k.at("labels"))
    job.use_incoming_timestamp = k.get_bool("use_incoming_timestamp", kind.incoming_ts_default)
    job.max_message_size = parse_size(k.get("max_send_msg_size", DEFAULT_MAX_MSG_SIZE), k.at("max_send_msg_size"))
    # Some lambda-promtail docs nest relabel_configs inside the job block; accept it there too.
    if k.has("relabel_configs"):
        job.has_relabel = True
        job.relabel = _compile_relabel(k.get("relabel_configs"), f"job {job.name!r} {k.at('relabel_configs')}")


def parse_job(value: Any, path: str, kinds: Mapping[str, JobKind] = JOB_KINDS) -> JobConfig:
    k = Keys(value, path, _INERT_SCRAPE)
    name = string(k.get("job_name"), k.at("job_name"))
    if not name:
        raise ConfigError(f"{k.at('job_name')}: every scrape config needs a job_name")
    found = [t for t in kinds if k.has(t)]
    if len(found) != 1:
        raise ConfigError(f"{path} (job {name!r}): exactly one of {', '.join(kinds)} is required "
                          f"(found {', '.join(found) or 'none'})")
    kind = kinds[found[0]]
    job = JobConfig(name=name, kind=kind.name, listen=ServerConfig(http_listen_port=DEFAULT_PUSH_PORT))
    block = Keys(k.get(kind.name), k.at(kind.name))
    _common_job_keys(block, job, kind)
    job.settings = kind.parse_settings(block)
    block.done()
    if k.has("relabel_configs"):
        job.has_relabel = True
        job.relabel += _compile_relabel(k.get("relabel_configs"), f"job {name!r} {k.at('relabel_configs')}")
    stages = k.get("pipeline_stages")
    if stages is not None and not isinstance(stages, list):
        raise ConfigError(f'job "{name}" pipeline_stages: expected a list of stages')
    job.pipeline_stages = stages or []
    k.done()
    return job


def parse_config(doc: Any, *, kinds: Mapping[str, JobKind] = JOB_KINDS,
                 sections: Mapping[str, Callable[[Any, str], object]] = SECTIONS) -> Config:
    """Build a Config from a YAML-decoded document (relay.kinds: the job kinds and extra sections)."""
    k = Keys(doc, "", _INERT_TOP)
    cfg = Config()
    cfg.server = parse_server(k.get("server"), "server", DEFAULT_SERVER_PORT)
    clients = k.get("clients") or []
    if not isinstance(clients, list):
        raise ConfigError("clients: expected a list")
    if k.has("client"):  # Promtail's deprecated single-client form
        clients = [k.get("client"), *clients]
    cfg.clients = [parse_client(c, f"clients[{i}]") for i, c in enumerate(clients)]
    jobs = k.get("scrape_configs") or []
    if not isinstance(jobs, list):
        raise ConfigError("scrape_configs: expected a list")
    cfg.jobs = [parse_job(j, f"scrape_configs[{i}]", kinds) for i, j in enumerate(jobs)]
    names: set[str] = set()
    ports: dict[int, str] = {cfg.server.http_listen_port: "server"}
    for job in cfg.jobs:
        if job.name in names:
            raise ConfigError(f"scrape_configs: duplicate job_name {job.name!r}")
        names.add(job.name)
        port = job.listen.http_listen_port
        if port and port in ports:
            raise ConfigError(f"job {job.name!r}: http_listen_port {port} is already used by {ports[port]}")
        if port:
            ports[port] = f"job {job.name!r}"
    if k.has("limits_config"):
        lk = Keys(k.get("limits_config"), "limits_config", _INERT_LIMITS)
        cfg.limits.max_line_size = parse_size(lk.get("max_line_size", 0), lk.at("max_line_size"))
        cfg.limits.max_line_size_truncate = boolean(lk.get("max_line_size_truncate", False), lk.at("max_line_size_truncate"))
        for name in ("max_label_names_per_series", "max_label_name_length", "max_label_value_length"):
            setattr(cfg.limits, name, integer(lk.get(name, getattr(cfg.limits, name)), lk.at(name), 1))
        for name in ("max_buffered_bytes", "max_buffered_bytes_per_tenant"):
            setattr(cfg.limits, name, parse_size(lk.get(name, getattr(cfg.limits, name)), lk.at(name)))
        cfg.limits.backpressure_wait = parse_duration(lk.get("backpressure_wait", "2s"), lk.at("backpressure_wait"))
        cfg.limits.reject_old_samples = boolean(lk.get("reject_old_samples", True), lk.at("reject_old_samples"))
        for name in ("reject_old_samples_max_age", "creation_grace_period"):
            seconds = parse_duration(lk.get(name, getattr(cfg.limits, name)), lk.at(name))
            if not 0 <= seconds < 1e10:
                raise ConfigError(f"{lk.at(name)}: expected a duration of 0 (off) or more, got {seconds!r} s")
            setattr(cfg.limits, name, seconds)
        lk.done()
    for name, parse in sections.items():
        cfg.extra[name] = parse(k.get(name), name)
    k.done()
    return cfg
