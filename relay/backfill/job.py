"""The relay config a backfill runs with, the job it applies, and Loki's age limit.

The config is built by relay.flags from the relay flags the backfill takes (-config.file,
-client.url, ...), as `loki-relay` builds it. Not through relay.cli: that module imports
this package to run the `backfill` subcommand.

Loki's reject_old_samples_max_age: the --reject-old-samples-max-age flag, else the config's
`limits_config.reject_old_samples_max_age` (0 with `reject_old_samples: false`), else Loki's
default (168h). The backfill handles old entries by its own --old-entries policy, so the
processor it applies has the relay's intake age check off: entries it chose to send are sent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .deps import (
    DEFAULT_RULES,
    KINDS,
    LAMBDA_KIND,
    Config,
    ConfigError,
    Flags,
    JobConfig,
    LambdaSettings,
    Processor,
    ServerConfig,
    build_config,
    load_yaml,
)

BUILTIN_JOB = "backfill"
MAX_AGE_KEY = "reject_old_samples_max_age"
SWITCH_KEY = "reject_old_samples"
LOKI_DEFAULT_MAX_AGE_NS = 168 * 3600 * 1_000_000_000


@dataclass(slots=True)
class Setup:
    cfg: Config
    job: JobConfig
    settings: LambdaSettings
    processor: Processor
    max_age_ns: int  # Loki's reject_old_samples_max_age; 0: Loki refuses no old entry
    max_age_from: str  # where it came from: "--reject-old-samples-max-age", "limits_config", "Loki's default"


def config_max_age(cfg: Config, doc: object) -> tuple[int, str] | None:
    """The config's reject_old_samples_max_age in ns and the key it came from; None when not set."""
    limits = doc.get("limits_config") if isinstance(doc, dict) else None
    if not isinstance(limits, dict):
        return None
    if limits.get(SWITCH_KEY) is False:
        return 0, f"limits_config.{SWITCH_KEY}"
    if limits.get(MAX_AGE_KEY) is None:
        return None
    return round(cfg.limits.reject_old_samples_max_age * 1_000_000_000), f"limits_config.{MAX_AGE_KEY}"


def relay_config(values: dict[str, str], expand_env: bool) -> tuple[Config, tuple[int, str] | None]:
    """The relay's Config from -config.file and the relay flags, as `loki-relay` builds it, and the
    config's reject_old_samples_max_age (config_max_age). Raises ConfigError."""
    flags = Flags(values=dict(values), switches={"config.expand-env"} if expand_env else set())
    path = values.get("config.file", "")
    doc = load_yaml(path, expand_env) if path else {}
    cfg = build_config(flags, doc)
    return cfg, config_max_age(cfg, doc)


def setup(job_name: str, relay_values: dict[str, str], expand_env: bool, flag_max_age_ns: int | None) -> Setup:
    """The relay config and the job whose processing the backfill applies. Raises ConfigError."""
    cfg, config_max_age = relay_config(relay_values, expand_env)
    jobs = cfg.jobs if "config.file" in relay_values else []
    if job_name:
        found = [j for j in jobs if j.name == job_name]
        if not found:
            raise ConfigError(f"--job: no job named {job_name!r} in the config"
                              + (f" (jobs: {', '.join(j.name for j in jobs)})" if jobs else ""))
        job = found[0]
    else:
        job = next((j for j in jobs if j.kind == LAMBDA_KIND), None) or JobConfig(
            name=BUILTIN_JOB, kind=LAMBDA_KIND, listen=ServerConfig(), use_incoming_timestamp=True)
    settings = job.settings
    if not isinstance(settings, LambdaSettings):
        settings = LambdaSettings()
    kind = KINDS.get(job.kind)
    rules = kind.default_rules if kind is not None else DEFAULT_RULES
    # Every entry keeps its own time, whatever the job says about live traffic; old entries are
    # the --old-entries policy's to handle, so the processor does not refuse them.
    limits = dataclasses.replace(cfg.limits, reject_old_samples=False)
    processor = Processor(dataclasses.replace(job, use_incoming_timestamp=True), limits, rules)
    if flag_max_age_ns is not None:  # the flag wins over the config
        max_age_ns, source = flag_max_age_ns, "--reject-old-samples-max-age"
    elif config_max_age is not None:
        max_age_ns, source = config_max_age
    else:
        max_age_ns, source = LOKI_DEFAULT_MAX_AGE_NS, "Loki's default"
    return Setup(cfg, job, settings, processor, max_age_ns, source)
