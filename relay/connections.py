"""Connection limits uvicorn lacks: header and request read deadlines, a header size cap, a
connection cap per listener.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`, our idle timeout), but a
connection that never finishes its headers or its body is held forever, and httptools
buffers a header of any size. `GuardedProtocol` is uvicorn's httptools protocol with:

- a deadline for the request head (`http_server_read_header_timeout`), from the connection's
  start or the request's first byte, and one for the body (`http_server_read_timeout`), from
  the end of the head: past either, 408 (or a plain close once the answer has begun). The
  handler then sees the client gone, and its reservation is released;
- `http_server_max_header_bytes`: a head larger than that is answered 431 and the
  connection closed, without reading the rest;
- `http_listen_conn_limit`: connections beyond it are answered 503 and closed at once.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from . import metrics

closed = Counter(
    "loki_relay_connections_refused_total",
    "Connections closed by a listener limit, by reason (header_timeout, read_timeout, header_too_large, conn_limit).",
    ["reason"],
    registry=metrics.REGISTRY,
)


@dataclass(slots=True, frozen=True)
class ConnLimits:
    read_header_timeout: float = 10.0
    read_timeout: float = 30.0
    max_header_bytes: int = 1 << 20
    conn_limit: int = 4096  # 0: none


def _answer(status: bytes, text: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            b"content-length: " + str(len(text)).encode() + b"\r\n\r\n" + text)


LINGER = 1.0  # seconds an answered, refused connection is drained before it is closed
_TIMEOUT = _answer(b"408 Request Timeout", b"request not received in time\n")
_TOO_LARGE = _answer(b"431 Request Header Fields Too Large", b"request header too large\n")
_TOO_MANY = _answer(b"503 Service Unavailable", b"too many connections\n")


def protocol_class(limits: ConnLimits) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with `limits` applied (uvicorn.Config(http=...))."""

    class GuardedProtocol(HttpToolsProtocol):
        _limits = limits

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._timer: asyncio.TimerHandle | None = None
            self._in_head = True  # reading a request head (or waiting for one)
            self._head_bytes = 0
            self._accepted = False  # counted among the listener's connections
            self._draining = False  # answered and closing

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            lim = self._limits
            if lim.conn_limit and len(self.connections) >= lim.conn_limit:
                self.transport = transport
                self._close(_TOO_MANY, "conn_limit")
                return
            super().connection_made(transport)
            self._accepted = True
            self._arm(lim.read_header_timeout or lim.read_timeout, "header_timeout")

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._accepted:
                super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._draining:
                return  # answered and closing: what still comes is dropped unread
            if self._in_head:
                if self._timer is None:  # a new request on a kept-alive connection
                    self._arm(self._limits.read_header_timeout or self._limits.read_timeout, "header_timeout")
                before = self._head_bytes
                self._head_bytes += len(data)
                limit = self._limits.max_header_bytes
                if limit and self._head_bytes > limit:
                    end = data.find(b"\r\n\r\n")  # the head may end inside this read, the body following
                    if end < 0 or before + end + 4 > limit:
                        self._close(_TOO_LARGE, "header_too_large")
                        return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._disarm()
            if self._limits.read_timeout:
                self._arm(self._limits.read_timeout, "read_timeout")
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            self._in_head = True
            self._head_bytes = 0
            super().on_message_complete()

        def _arm(self, seconds: float, reason: str) -> None:
            self._disarm()
            if seconds > 0:
                self._timer = self.loop.call_later(seconds, self._expired, reason)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self, reason: str) -> None:
            self._timer = None
            started = self.cycle is not None and self.cycle.response_started
            self._close(b"" if started else _TIMEOUT, reason)

        def _close(self, answer: bytes, reason: str) -> None:
            transport = self.transport
            if transport.is_closing() or self._draining:
                return
            closed.labels(reason).inc()
            if not answer:
                transport.close()
                return
            # Answer, half-close, and drop what the sender still sends for a moment before the
            # close: closing with unread input would reset the connection and lose the answer.
            self._draining = True
            self._disarm()
            transport.write(answer)
            if transport.can_write_eof():
                transport.write_eof()
            self.loop.call_later(LINGER, transport.close)
            if self.cycle is not None and not self.cycle.response_complete:
                # The handler reading the body sees the client gone now, and releases its room.
                self.cycle.disconnected = True
                self.cycle.message_event.set()

    return GuardedProtocol


class BodyRoom(Protocol):
    def add(self, n: int) -> None: ...
    def release(self) -> None: ...


# The room a request's body takes (relay.sink.fanout.Ticket), set by the handler when it admits
# the request (relay.ingest.Ingest.check): each request runs in its own task, so its own value.
body_room: ContextVar[BodyRoom | None] = ContextVar("body_room", default=None)


def metered(app: Any) -> Any:
    """ASGI wrapper: body bytes count against the request's room as they arrive, and the room is
    released the moment the connection closes (a timeout above, or the sender hanging up)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def counted() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            room = body_room.get()
            if room is not None:
                if message["type"] == "http.request":
                    room.add(len(message.get("body", b"")))
                elif message["type"] == "http.disconnect":
                    room.release()
            return message

        await app(scope, counted, send)

    return wrapped
