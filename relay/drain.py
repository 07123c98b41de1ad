"""Readiness and drain for load balancers: what `GET /ready` answers on every port.

On SIGTERM the relay first drains: `/ready` answers 503 at once on every port, while the
listeners keep serving for `server.shutdown_delay`, so a load balancer (or Kubernetes'
endpoint controller) stops routing here before the listeners close. While draining,
every answer carries `Connection: close`, so clients on keep-alive connections reconnect
through the balancer to another instance instead of holding on to this one.

With `server.unready_on_backpressure`, `/ready` also answers 503 while the relay's
buffers are full, so a balancer prefers an instance with room. Off by default: when
every instance is full, readiness tied to load takes them all out of rotation at once,
and senders get connection errors instead of 429s they would back off from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_CLOSE = (b"connection", b"close")


class Readiness:
    """Shared by every listener of one relay."""

    def __init__(self, full: Callable[[], str] | None = None) -> None:
        self.started = False  # every listener is up
        self.draining = False  # a stop signal came; listeners still serve
        self.full = full  # why the buffers are full ("" when not), when backpressure counts

    def why_not(self) -> str:
        """Why the relay is not ready, or "" when it is."""
        if self.draining:
            return "draining"
        if not self.started:
            return "starting"
        if self.full is not None:
            return self.full()
        return ""


class ReadyGate:
    """ASGI middleware: answers `/ready` (before any auth) and marks answers `Connection: close` while draining."""

    def __init__(self, app: ASGIApp, readiness: Readiness) -> None:
        self.app = app
        self.readiness = readiness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/ready" and scope["method"] in ("GET", "HEAD"):
            why = self.readiness.why_not()
            body = b"ready\n" if not why else f"not ready: {why}\n".encode()
            headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
            if self.readiness.draining:
                headers.append(_CLOSE)
            await send({"type": "http.response.start", "status": 503 if why else 200, "headers": headers})
            await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
            return
        if not self.readiness.draining:
            await self.app(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), _CLOSE]
            await send(message)

        await self.app(scope, receive, closing)
