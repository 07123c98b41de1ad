"""Job kind `loki_push_api`: `/loki/api/v1/push`, `/api/prom/push` and Promtail's `/promtail/api/v1/raw`,
a thin layer over `relay.sources.push`."""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ...ingest import Backpressure, Ingest
from ...tenant import tenant_error
from ..content import BadRequest, BodyTooLarge, first_errors, heavy
from ..push import Decoded, PushDecoder, decode_raw
from .listener import ClientGone, content_length, observe, read_body


def _too_many(e: Backpressure) -> Response:
    return PlainTextResponse(f"{e}\n", 429, headers={"Retry-After": e.retry_after_header})


def routes(ingest: Ingest) -> list[Route]:
    job = ingest.job
    limit = job.max_message_size
    decoder = PushDecoder(pass_through=ingest.processor.passes_entries_through)

    async def decode(request: Request, body: bytes, raw: bool, receive_ns: int) -> Decoded:
        headers = request.headers
        encoding = headers.get("content-encoding", "")
        if raw:
            if heavy(body, encoding):
                return await asyncio.to_thread(decode_raw, body, encoding, limit, receive_ns)
            return decode_raw(body, encoding, limit, receive_ns)
        legacy = request.scope["path"].startswith("/api/prom/")  # not request.url: it builds a whole URL
        content_type = headers.get("content-type", "")
        if heavy(body, encoding):
            return await asyncio.to_thread(decoder.decode, body, content_type, encoding, limit, legacy=legacy)
        return decoder.decode(body, content_type, encoding, limit, legacy=legacy)

    async def handle(request: Request, route: str, raw: bool) -> Response:
        with observe(job.name, route) as done:
            receive_ns = time.time_ns()
            tenant = request.headers.get("x-scope-orgid", "")
            if bad := tenant_error(tenant):
                return done(PlainTextResponse(f"{bad}\n", 400))
            try:
                # Wait for room (and reserve it) before reading: a refused request costs nothing.
                ticket = await ingest.check(tenant, content_length(request))
            except Backpressure as e:
                return done(_too_many(e))
            try:
                try:
                    body = await read_body(request, limit)
                    decoded = await decode(request, body, raw, receive_ns)
                except BodyTooLarge as e:
                    return done(PlainTextResponse(f"{e}\n", 413))
                except ClientGone as e:
                    return done(PlainTextResponse(f"{e}\n", 499))  # nginx's "client closed request"
                except BadRequest as e:
                    return done(PlainTextResponse(f"{e}\n", 400))
                if decoded.invalid_entries:
                    ingest.count_invalid(decoded.invalid_entries, decoded.invalid_bytes,
                                         f"first error of the request: {decoded.errors[0]}" if decoded.errors else "")
                try:
                    outcome = await ingest.push(decoded.streams, tenant, receive_ns, ticket, times=decoded.times)
                except Backpressure as e:
                    return done(_too_many(e))
            finally:
                ticket.release()
            errors = decoded.errors + outcome.errors
            if errors:
                # As Loki: the valid streams were taken; the sender learns what was refused.
                return done(PlainTextResponse(first_errors(errors, "\n") + "\n", 400))
            return done(Response(status_code=204))

    async def push(request: Request) -> Response:
        return await handle(request, "push", raw=False)

    async def raw(request: Request) -> Response:
        return await handle(request, "raw", raw=True)

    return [
        Route("/loki/api/v1/push", push, methods=["POST"]),
        Route("/api/prom/push", push, methods=["POST"]),
        Route("/promtail/api/v1/raw", raw, methods=["POST"]),
    ]
