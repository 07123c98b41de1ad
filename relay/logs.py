"""Process logs in logfmt (the default, as Promtail) or JSON."""

from __future__ import annotations

import logging
import sys
import time

import orjson

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def _logfmt_value(v: str) -> str:
    if v and not any(c in v for c in ' ="\\\n\t'):
        return v
    return orjson.dumps(v).decode()


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        level = {"WARNING": "warn", "CRITICAL": "error"}.get(record.levelname, record.levelname.lower())
        parts = [f"ts={ts}", f"level={level}", f"caller={record.name}", f"msg={_logfmt_value(record.getMessage())}"]
        if record.exc_info:
            parts.append(f"err={_logfmt_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": {"WARNING": "warn", "CRITICAL": "error"}.get(record.levelname, record.levelname.lower()),
            "caller": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["err"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


def setup(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.INFO))
    # uvicorn's access log would cost a line per push; errors still come through.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request it makes at info: one line per batch sent upstream.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # At debug, the AWS SDK and urllib3 log request headers and credential lookups (an S3
    # session token, a proxy's user:password): never below info, whatever -log.level says.
    for name in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _PerServer) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_PerServer())


class _PerServer(logging.Filter):
    """uvicorn logs its life cycle once per listener (one per job, plus the server port); the
    relay logs start, listeners and stop itself, once each."""

    QUIET = frozenset({"Started server process [%d]", "Finished server process [%d]", "Shutting down",
                       "Waiting for connections to close. (CTRL+C to force quit)"})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.QUIET
