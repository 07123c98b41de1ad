"""A Lambda function that forwards its event to loki-relay: standard library only, one file.

Handler: `forwarder.handler` (deploy this file alone as `forwarder.py`, runtime python3.9+;
or `relay.aws.forwarder.handler` when the whole package is deployed). Triggers: CloudWatch
Logs subscriptions, Kinesis, S3 notifications, SQS, SNS, EventBridge — anything the relay's
`aws_lambda` job understands.

Environment:
    RELAY_URL            required: http(s)://relay:3600/awslambda/api/v1/push (a bare
                         http(s)://host:port gets that path added)
    RELAY_USERNAME       optional basic auth, with RELAY_PASSWORD
    RELAY_PASSWORD
    RELAY_BEARER_TOKEN   optional, instead of basic auth
    RELAY_TENANT_ID      optional X-Scope-OrgID
    RELAY_TIMEOUT        seconds (default: the invocation's remaining time less 2 s, else 300);
                         the relay answers once an S3 object is read through, which takes time
    RELAY_SKIP_TLS_VERIFY  "true" to skip certificate checks

Any non-2xx answer (or no answer) raises, so the invocation fails and AWS retries it (with
the usual Lambda semantics: async events retry twice then go to a DLQ/destination; Kinesis
retries the batch). For SQS the relay's `batchItemFailures` are returned, so only the
messages that failed are retried; enable "Report batch item failures" on the trigger.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import ssl
import urllib.error
import urllib.request
from typing import Any

PATH = "/awslambda/api/v1/push"
GZIP_OVER = 64 << 10  # bodies larger than this are sent gzip'd


class ForwardError(RuntimeError):
    """The relay did not accept the event; raised so the invocation fails."""


def _settings(env: Any) -> dict[str, Any]:
    url = env.get("RELAY_URL", "").strip()
    if not url.startswith(("http://", "https://")):
        raise ForwardError("RELAY_URL must be set to the relay's http(s):// URL")
    if url.rstrip("/").count("/") == 2:  # scheme://host[:port] only
        url = url.rstrip("/") + PATH
    user, password = env.get("RELAY_USERNAME", ""), env.get("RELAY_PASSWORD", "")
    token = env.get("RELAY_BEARER_TOKEN", "")
    if bool(user) != bool(password):
        raise ForwardError("RELAY_USERNAME and RELAY_PASSWORD go together")
    if user and token:
        raise ForwardError("RELAY_USERNAME and RELAY_BEARER_TOKEN are mutually exclusive")
    headers = {"Content-Type": "application/json", "User-Agent": "loki-relay-forwarder"}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    if env.get("RELAY_TENANT_ID"):
        headers["X-Scope-OrgID"] = env["RELAY_TENANT_ID"]
    timeout = None
    if env.get("RELAY_TIMEOUT"):
        try:
            timeout = float(env["RELAY_TIMEOUT"])
        except ValueError:
            raise ForwardError(f"RELAY_TIMEOUT must be a number of seconds, got {env['RELAY_TIMEOUT']!r}") from None
    ctx = None
    skip = env.get("RELAY_SKIP_TLS_VERIFY", "").strip().lower()
    if skip not in ("", "true", "false"):
        raise ForwardError(f"RELAY_SKIP_TLS_VERIFY must be true or false, got {skip!r}")
    if skip == "true":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return {"url": url, "headers": headers, "timeout": timeout, "ssl": ctx}


def _is_sqs(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return isinstance(records, list) and bool(records) and isinstance(records[0], dict) and records[0].get("eventSource") == "aws:sqs"


def forward(event: Any, context: Any = None, env: Any = None) -> dict[str, Any]:
    """POST the event; the relay's JSON answer. Raises ForwardError unless it answered 2xx."""
    s = _settings(os.environ if env is None else env)
    body = json.dumps(event, separators=(",", ":")).encode()
    headers = dict(s["headers"])
    if len(body) > GZIP_OVER:
        body = gzip.compress(body, 1)
        headers["Content-Encoding"] = "gzip"
    timeout = s["timeout"]
    if timeout is None:
        left = getattr(context, "get_remaining_time_in_millis", None)
        timeout = max(1.0, left() / 1000 - 2) if left else 300.0
    req = urllib.request.Request(s["url"], data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=s["ssl"]) as r:
            text = r.read()
    except urllib.error.HTTPError as e:
        detail = e.read()[:1024].decode("utf-8", "replace").strip()
        raise ForwardError(f"relay answered {e.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as e:
        raise ForwardError(f"cannot reach the relay at {s['url']}: {getattr(e, 'reason', e)}") from None
    try:
        answer = json.loads(text) if text else {}
    except ValueError:
        answer = {}
    return answer if isinstance(answer, dict) else {}


def handler(event: Any, context: Any = None) -> Any:
    answer = forward(event, context)
    print(json.dumps({k: v for k, v in answer.items() if k != "batchItemFailures"}))
    if _is_sqs(event):
        failures = answer.get("batchItemFailures")
        if not isinstance(failures, list):
            raise ForwardError("relay answer to an SQS event has no batchItemFailures list")
        return {"batchItemFailures": failures}
    return None
