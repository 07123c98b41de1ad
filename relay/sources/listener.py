"""What every listener shares: request timing by status, the /ready route, the app itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from .. import metrics


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
