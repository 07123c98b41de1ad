"""Runs the relay: one HTTP listener per job plus the server port, the sinks, and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import socket
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import metrics
from .config import Config, JobConfig, ServerConfig
from .connections import ConnLimits, metered, protocol_class
from .drain import Readiness, ReadyGate
from .ingest import Ingest
from .kinds import JOB_KINDS
from .model import held_size
from .pipeline import Processor
from .sink.client import LokiClient, Transport
from .sink.fanout import Fanout
from .sink.wal import WriteAheadLog
from .sink.walconfig import WalConfig
from .sources.http.listener import guard, make_app

log = logging.getLogger("relay.server")

class StartupError(Exception):
    pass


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the relay (several run in one loop), and
    that stops as soon as it is told to, not at its next 0.1 s tick."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._told = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def exit(self) -> None:
        self.should_exit = True
        self._told.set()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):  # on_tick also refreshes the Date header each second
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._told.wait(), 0.1)


def bind(listen: ServerConfig, what: str) -> socket.socket:
    host = listen.http_listen_address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, listen.http_listen_port))
    except OSError as e:
        sock.close()
        raise StartupError(f"{what}: cannot listen on {host}:{listen.http_listen_port}: {e.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Relay:
    def __init__(self, cfg: Config, transport: Transport | None = None) -> None:
        self.cfg = cfg
        self.clients = [LokiClient(c, transport) for c in cfg.clients]
        wal_cfg = cfg.extra.get("wal")
        self.wal = WriteAheadLog(wal_cfg) if isinstance(wal_cfg, WalConfig) and wal_cfg.enabled else None
        self.sink = Fanout(self.clients, self.wal, cfg.limits.max_buffered_bytes, cfg.limits.max_buffered_bytes_per_tenant)
        self.ingests: list[Ingest] = []
        for job in cfg.jobs:
            processor = Processor(job, cfg.limits, JOB_KINDS[job.kind].default_rules)
            self.ingests.append(Ingest(job, processor, self.sink))
        self._servers: list[_Server] = []
        self.readiness = Readiness(self.sink.refusing if cfg.server.unready_on_backpressure else None)
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()  # a second signal: skip what is left of the drain delay

    def server_app(self) -> FastAPI:
        async def prom(_: Request) -> Response:
            return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

        routes: list[BaseRoute] = [Route("/metrics", prom, methods=["GET"])]  # /ready: ReadyGate, on every port
        return FastAPI(routes=routes, docs_url=None, redoc_url=None, openapi_url=None)

    def _uvicorn(self, app: FastAPI, listen: ServerConfig) -> _Server:
        limits = ConnLimits(read_header_timeout=listen.read_header_timeout, read_timeout=listen.read_timeout,
                            max_header_bytes=listen.max_header_bytes, conn_limit=listen.conn_limit)
        config = uvicorn.Config(
            metered(ReadyGate(guard(app, listen.auth), self.readiness)),
            log_config=None,
            access_log=False,
            lifespan="off",
            http=protocol_class(limits),
            timeout_keep_alive=listen.idle_timeout or 1 << 30,  # type: ignore[arg-type]  # any seconds work
            server_header=False,
            timeout_graceful_shutdown=self.cfg.server.graceful_shutdown_timeout,  # type: ignore[arg-type]  # any seconds work
            ssl_certfile=listen.tls_cert_file or None,
            ssl_keyfile=listen.tls_key_file or None,
            ssl_ca_certs=listen.tls_client_ca_file or None,
            ssl_cert_reqs=2 if listen.tls_client_ca_file else 0,  # ssl.CERT_REQUIRED with a client CA
        )
        return _Server(config)

    def listeners(self) -> list[tuple[str, FastAPI, ServerConfig]]:
        out = [("server", self.server_app(), self.cfg.server)]
        for ingest in self.ingests:
            job: JobConfig = ingest.job
            routes = importlib.import_module(JOB_KINDS[job.kind].routes).routes(ingest)
            out.append((f"job {job.name!r}", make_app(routes), job.listen))
        return out

    async def _replay(self) -> None:
        """Send again what the WAL holds from before, within the memory limit."""
        assert self.wal is not None
        limit = self.cfg.limits.max_buffered_bytes
        async for seg, records in self.wal.replay():
            for tenant, chunks in records:
                size = held_size(chunks)
                while self.sink.held and self.sink.held + size > limit and not self._stopping.is_set():
                    await asyncio.sleep(0.05)
                if self._stopping.is_set():
                    return  # the rest stays in the log
                self.sink.add({tenant: chunks}, {tenant: seg})

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        plan = self.listeners()
        replay = None
        if self.wal is not None:
            try:
                self.wal.open()
            except OSError as e:
                raise StartupError(f"wal: cannot open {self.wal.dir}: {e.strerror}") from None
            self.wal.start()
            replay = loop.create_task(self._replay(), name="wal replay")
        sockets = []
        try:
            for what, _, listen in plan:
                sockets.append(bind(listen, what))
        except StartupError:
            for s in sockets:
                s.close()
            raise
        tasks = []
        for (what, app, listen), sock in zip(plan, sockets, strict=True):
            server = self._uvicorn(app, listen)
            self._servers.append(server)
            tasks.append(loop.create_task(server.serve(sockets=[sock]), name=what))
            host, port = sock.getsockname()[:2]
            log.info("listening: %s on %s:%d", what, host, port)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        while not all(s.started for s in self._servers):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.01)
        flushers = [loop.create_task(self._flush_every(i), name=f"flush {i.job.name}")
                    for i in self.ingests if i.processor.flush_every > 0]
        self.readiness.started = True
        log.info("loki-relay ready: %d job(s), %d client(s)", len(self.ingests), len(self.clients))
        failed = [t for t in tasks if t.done()]
        if not failed:
            await self._stopping.wait()
        self.readiness.draining = True
        delay = self.cfg.server.shutdown_delay
        if delay > 0 and not failed:
            log.info("draining: /ready answers 503, still serving for %gs so load balancers stop routing here", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), delay)
        log.info("shutting down: no longer accepting, flushing buffered entries")
        # One deadline for the in-flight requests and the flush (the drain delay comes before it).
        deadline = loop.time() + self.cfg.server.graceful_shutdown_timeout
        # Stop the data listeners first (in-flight requests finish), then flush, then the server port.
        for server in self._servers[1:]:
            server.exit()
        await asyncio.gather(*tasks[1:], return_exceptions=True)
        for f in flushers:
            f.cancel()
        await asyncio.gather(*flushers, return_exceptions=True)
        for ingest in self.ingests:  # what stages still hold (multiline) goes out before the drain
            if ingest.processor.pipeline is not None:
                await ingest.flush(final=True)
        if replay is not None:
            await replay
        await self.sink.close(max(0.0, deadline - loop.time()))
        if self.wal is not None:
            await self.wal.close()
        self._servers[0].exit()
        await asyncio.gather(tasks[0], return_exceptions=True)
        log.info("stopped")
        return 1 if failed else 0

    @staticmethod
    async def _flush_every(ingest: Ingest) -> None:
        """Pipeline stages that hold entries back (multiline max_wait_time) give them up on a timer."""
        every = ingest.processor.flush_every
        while True:
            await asyncio.sleep(every)
            try:
                await ingest.flush()
            except Exception:  # a bug in a stage must not stop the timer, nor the relay
                log.exception("job %s: flushing pipeline stages failed", ingest.job.name)

    def stop(self) -> None:
        """Begin the drain; called again (a second signal), end the drain delay at once."""
        if self._stopping.is_set():
            self._hurry.set()
        self._stopping.set()
