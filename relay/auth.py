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
`WWW-Authenticate` header; `GET /ready` stays open for health checks (the ASGI side:
`relay.sources.http.listener`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Any

from .keys import ConfigError, Keys, read_secret_file, string


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
        a.username = string(b.get("username"), b.at("username"))
        a.password = string(b.get("password"), b.at("password"))
        if b.has("password_file"):
            if a.password:
                raise ConfigError(f"{b.path}: password and password_file are mutually exclusive")
            a.password_file = string(b.get("password_file"), b.at("password_file"))
            a.password = read_secret_file(a.password_file, b.at("password_file"))
        b.done()
        if not a.username or not a.password:
            raise ConfigError(f"{b.path}: basic auth needs a username and a non-empty password")
    a.bearer_token = string(k.get("bearer_token"), k.at("bearer_token"))
    if k.has("bearer_token_file"):
        if a.bearer_token:
            raise ConfigError(f"{path}: bearer_token and bearer_token_file are mutually exclusive")
        a.bearer_token_file = string(k.get("bearer_token_file"), k.at("bearer_token_file"))
        a.bearer_token = read_secret_file(a.bearer_token_file, k.at("bearer_token_file"))
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
