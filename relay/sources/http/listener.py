"""What every HTTP listener shares: bounded body reading, request timing by status, listener
auth, the /ready route, the app itself. Only relay.sources.http and relay.server import a web framework."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ... import metrics
from ...auth import ListenerAuth, check
from ..content import BadRequest, BodyTooLarge

auth_failures = Counter(
    "loki_relay_auth_failures_total", "Requests refused with 401 by listener authentication.", ["port"],
    registry=metrics.REGISTRY,
)


class ClientGone(BadRequest):
    """The sender hung up before its body arrived (nothing to answer; counted as 499)."""


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > limit:
                raise BodyTooLarge(f"request body of {length} bytes exceeds the limit of {limit} bytes")
        except ValueError:
            raise BadRequest(f"invalid Content-Length {length!r}") from None
    parts: list[bytes] = []
    size = 0
    try:
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise BodyTooLarge(f"request body exceeds the limit of {limit} bytes")
            parts.append(part)
    except ClientDisconnect:
        raise ClientGone("client disconnected before sending the whole body") from None
    return b"".join(parts)


def content_length(request: Request) -> int:
    """The declared body size, 0 when absent or not a number (an estimate for buffer room)."""
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else 0


@contextmanager
def observe(job: str, route: str) -> Iterator[Callable[[Response], Response]]:
    """Times a handler; the handler returns `done(response)` so the status is recorded."""
    start = time.perf_counter()
    status = [500]

    def done(response: Response) -> Response:
        status[0] = response.status_code
        return response

    try:
        yield done
    finally:
        metrics.requests.labels(job, route, str(status[0])).observe(time.perf_counter() - start)


async def ready(_: Request) -> Response:
    return PlainTextResponse("ready\n")


def make_app(routes: list[BaseRoute]) -> FastAPI:
    """A bare FastAPI app: no docs pages on a data port."""
    return FastAPI(routes=[*routes, Route("/ready", ready, methods=["GET"])], docs_url=None, redoc_url=None, openapi_url=None)


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
