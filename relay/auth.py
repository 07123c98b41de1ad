"""Optional authentication on a listener: HTTP basic auth and/or a bearer token.

Configured per listener in its `server` block:

    server:
      auth:
        basic: {username: promtail, password_file: /run/secrets/push_password}   # or password: ...
        bearer_token_file: /run/secrets/push_token                             # or bearer_token: ...

With both, either credential is accepted. Secrets come from files (`*_file`) or from
the environment through `-config.expand-env` (`password: ${PUSH_PASSWORD}`). They are
compared in constant time (hmac.compare_digest), never logged, and masked by
-print-config-stderr. A request without valid credentials gets 401 with a
`WWW-Authenticate` header; `GET /ready` stays open for health checks.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from . import metrics
from .config import ConfigError, Keys, _read_secret_file, _str

log = logging.getLogger("relay.auth")

auth_failures = Counter(
    "loki_relay_auth_failures_total", "Requests refused with 401 by listener authentication.", ["port"],
    registry=metrics.REGISTRY,
)


@dataclass(slots=True)
class ListenerAuth:
    username: str = ""
    password: str = ""
    password_file: str = ""
    bearer_token: str = ""
    bearer_token_file: str = ""

    @property
    def basic(self) -> bool:
        return bool(self.username)


def parse_auth(value: Any, path: str) -> ListenerAuth:
    k = Keys(value, path)
    a = ListenerAuth()
    if k.has("basic"):
        b = Keys(k.get("basic"), k.at("basic"))
        a.username = _str(b.get("username"), b.at("username"))
        a.password = _str(b.get("password"), b.at("password"))
        if b.has("password_file"):
            if a.password:
                raise ConfigError(f"{b.path}: password and password_file are mutually exclusive")
            a.password_file = _str(b.get("password_file"), b.at("password_file"))
            a.password = _read_secret_file(a.password_file, b.at("password_file"))
        b.done()
        if not a.username or not a.password:
            raise ConfigError(f"{b.path}: basic auth needs a username and a non-empty password")
    a.bearer_token = _str(k.get("bearer_token"), k.at("bearer_token"))
    if k.has("bearer_token_file"):
        if a.bearer_token:
            raise ConfigError(f"{path}: bearer_token and bearer_token_file are mutually exclusive")
        a.bearer_token_file = _str(k.get("bearer_token_file"), k.at("bearer_token_file"))
        a.bearer_token = _read_secret_file(a.bearer_token_file, k.at("bearer_token_file"))
        if not a.bearer_token:
            raise ConfigError(f"{k.at('bearer_token_file')}: the file is empty")
    k.done()
    if not a.basic and not a.bearer_token:
        raise ConfigError(f"{path}: needs basic (username, password) and/or bearer_token")
    return a


def check(auth: ListenerAuth, header: bytes | None) -> bool:
    """Whether an Authorization header value carries one of the configured credentials."""
    if not header:
        return False
    scheme, _, cred = header.partition(b" ")
    scheme = scheme.lower()
    cred = cred.strip()
    if scheme == b"bearer" and auth.bearer_token:
        return hmac.compare_digest(cred, auth.bearer_token.encode())
    if scheme == b"basic" and auth.basic:
        try:
            user, sep, password = base64.b64decode(cred, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Both compared, always, so the time taken does not tell which one was wrong.
        ok_user = hmac.compare_digest(user, auth.username.encode())
        ok_pass = hmac.compare_digest(password, auth.password.encode())
        return bool(sep) and ok_user and ok_pass
    return False


class AuthMiddleware:
    """ASGI middleware: 401 unless the request carries valid credentials."""

    def __init__(self, app: Any, auth: ListenerAuth) -> None:
        self.app = app
        self.auth = auth
        schemes = []
        if auth.basic:
            schemes.append(b'Basic realm="loki-relay"')
        if auth.bearer_token:
            schemes.append(b'Bearer realm="loki-relay"')
        self._challenge = b", ".join(schemes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (scope["path"] == "/ready" and scope["method"] in ("GET", "HEAD")):
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        if check(self.auth, header):
            await self.app(scope, receive, send)
            return
        server = scope.get("server") or ("", 0)
        auth_failures.labels(str(server[1])).inc()
        body = b"unauthorized\n"
        await send({
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", self._challenge),
            ],
        })
        await send({"type": "http.response.body", "body": body})


def guard(app: Any, auth: ListenerAuth | None) -> Any:
    return app if auth is None else AuthMiddleware(app, auth)
