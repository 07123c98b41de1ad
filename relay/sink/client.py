"""One upstream Loki: per-tenant batching, a background sender per tenant, retries.

Each tenant has its own queue and sender task, so a tenant that Loki rate-limits
or rejects never holds up another tenant, another client, or the push handlers
(which only append to queues). The tenants of a client share its connection pool:
at most MAX_SENDS requests are in flight at once (a sender waiting for its turn is
not yet timed), so thousands of tenants queue for connections instead of timing
out in the pool. A tenant's sender and queue end after IDLE seconds without
entries, so tenants seen once cost nothing later.

When a batch is finished with (accepted by Loki, or dropped for good) the client
reports its size to `on_done(tenant, bytes)`: the fan-out uses that to free the
memory budget and to confirm write-ahead-log records. A batch abandoned at
shutdown is not reported when the WAL is on (`durable`), so it is replayed on the
next start instead of being lost.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TextIO
from urllib.parse import urlsplit

import httpx

from .. import __version__, metrics
from ..config import ClientConfig
from ..model import CHUNK_COUNT, CHUNK_OVERHEAD, CHUNK_SIZE, Chunk
from ..proto import PushRequest
from . import retry
from .batch import LabelEncoder, Pending, compress, encode_push
from .retry import parse_retry_after

log = logging.getLogger("relay.client")
# httpx logs every request with its full URL at info level: a line per batch, and the URL may
# carry credentials (http://user:password@host). Only its warnings are wanted.
logging.getLogger("httpx").setLevel(logging.WARNING)

USER_AGENT = f"loki-relay/{__version__}"

MAX_SENDS = 32  # requests in flight per client, all tenants together (the pool's size)
IDLE = 300.0  # seconds a tenant's sender waits for entries before it ends

# Promtail's drop reasons for batches Loki would not take.
RATE_LIMITED = "rate_limited"
INGESTER_ERROR = "ingester_error"
SHUTDOWN = "shutdown"


# httpx leaves each request's objects in reference cycles (send() breaks the one that holds the
# body). With the relay's lazy collection thresholds (see cli.py) what is left would pile up
# between full collections; a full collection every GC_EVERY bytes sent bounds that.
GC_EVERY = 256 << 20
_sent_since_gc = 0


def _collect_after(sent: int) -> None:
    global _sent_since_gc
    _sent_since_gc += sent
    if _sent_since_gc >= GC_EVERY:
        _sent_since_gc = 0
        gc.collect()


class SendResult:
    __slots__ = ("error", "retry_after", "status")

    def __init__(self, status: int, retry_after: float | None = None, error: str = "") -> None:
        self.status = status  # HTTP status, or 0 for a connection error or timeout
        self.retry_after = retry_after
        self.error = error


Transport = Callable[[str, bytes], Awaitable[SendResult]]


def ssl_context(cfg: ClientConfig) -> ssl.SSLContext | bool:
    t = cfg.tls
    if not (t.ca_file or t.cert_file or t.insecure_skip_verify):
        if all(urlsplit(u).scheme != "https" for u in (cfg.url, cfg.proxy_url)):
            # Plain HTTP never makes a TLS handshake: skip loading the CA bundle (about 25 ms a
            # client at start-up). A context without CAs could verify nothing, should it ever be used.
            return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        return True
    ctx = ssl.create_default_context(cafile=t.ca_file or None)
    if t.cert_file:
        ctx.load_cert_chain(t.cert_file, t.key_file)
    if t.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def secrets_of(cfg: ClientConfig) -> list[str]:
    """The credentials of a client, to be cut out of any error text that is logged."""
    out = [cfg.bearer_token, *(cfg.basic_auth[1:] if cfg.basic_auth else ()), *cfg.headers.values()]
    for url in (cfg.url, cfg.proxy_url):
        userinfo, at, _ = urlsplit(url).netloc.rpartition("@")
        if at and ":" in userinfo:
            out.append(userinfo.partition(":")[2])
    return [s for s in out if len(s) >= 3]


def client_name(cfg: ClientConfig) -> str:
    """The client's name in metrics and logs: never the URL's user:password@."""
    return cfg.name or urlsplit(cfg.url).netloc.rpartition("@")[2]


class LokiClient:
    def __init__(self, cfg: ClientConfig, transport: Transport | None = None) -> None:
        self.cfg = cfg
        self.name = client_name(cfg)
        self.labels = LabelEncoder(cfg.external_labels)
        self._secrets = secrets_of(cfg)
        self._transport = transport or self._http_transport()
        self._queues: dict[str, Pending] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self._sends = asyncio.Semaphore(MAX_SENDS)
        self.idle = IDLE
        self.on_done: Callable[[str, int], None] | None = None  # (tenant key, bytes) when a batch is settled
        self.durable = False  # a WAL keeps what this client has not settled: do not count it lost at shutdown
        self._deadline = float("inf")  # monotonic time after which a closing client gives up retrying
        self.buffered_entries = 0  # waiting + in flight
        self.buffered_bytes = 0
        self._m_buf_entries = metrics.buffered_entries.labels(self.name)
        self._m_buf_bytes = metrics.buffered_bytes.labels(self.name)
        self._m_sent_entries = metrics.sent_entries.labels(self.name)
        self._m_sent_bytes = metrics.sent_bytes.labels(self.name)
        self._m_batches = metrics.sent_batches.labels(self.name)
        self._m_req_bytes = metrics.request_bytes.labels(self.name)
        self._m_retries = metrics.batch_retries.labels(self.name)

    # -- the HTTP side ------------------------------------------------------------------

    def _http_transport(self) -> Transport:
        cfg = self.cfg
        headers = {"Content-Type": "application/x-protobuf", "User-Agent": USER_AGENT, **cfg.headers}
        auth = httpx.BasicAuth(*cfg.basic_auth) if cfg.basic_auth else None
        if cfg.bearer_token:
            headers["Authorization"] = f"Bearer {cfg.bearer_token}"
        http = httpx.AsyncClient(
            timeout=cfg.timeout or None,
            verify=ssl_context(cfg),
            auth=auth,
            headers=headers,
            proxy=cfg.proxy_url or None,
            limits=httpx.Limits(max_connections=MAX_SENDS, max_keepalive_connections=MAX_SENDS),
        )
        self._http = http

        # tls_config.server_name: the name sent as SNI and checked against the certificate.
        extensions = {"sni_hostname": cfg.tls.server_name} if cfg.tls.server_name else None

        async def send(tenant: str, body: bytes) -> SendResult:
            extra = {"X-Scope-OrgID": tenant} if tenant else None
            try:
                r = await http.post(cfg.url, content=body, headers=extra, extensions=extensions)
            except httpx.HTTPError as e:
                return SendResult(0, error=self._scrub(f"{type(e).__name__}: {e}"))
            text = "" if r.status_code < 300 else r.text[:512]
            result = SendResult(r.status_code, parse_retry_after(r.headers.get("Retry-After")), text)
            # The read response and its stream refer to each other, and through the request to the
            # body: break that cycle so the body is freed now, not at the next full collection.
            r.stream = None  # type: ignore[assignment]
            return result

        return send

    @property
    def tenants(self) -> int:
        """Tenants with a live sender."""
        return len(self._tasks)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<secret>")
        return text

    # -- the queue side -----------------------------------------------------------------

    def add(self, tenant: str, chunks: list[Chunk], size: int | None = None) -> None:
        """Queue chunks for a tenant ("" = the client's tenant_id). Never blocks.

        Queues are keyed by the tenant as given (so `on_done` reports it back as given);
        "" is mapped to the client's tenant_id only when sending.
        """
        q = self._queues.get(tenant)
        if q is None:
            q = self._queues[tenant] = Pending()
            self._wake[tenant] = asyncio.Event()
            self._tasks[tenant] = asyncio.get_running_loop().create_task(self._run(tenant), name=f"send {self.name} {tenant}")
        was_empty = not q.chunks
        entries = sum(map(CHUNK_COUNT, chunks))
        if size is None:
            size = sum(map(CHUNK_SIZE, chunks))
        q.extend(chunks, entries, size, time.monotonic())
        self.buffered_entries += entries
        self.buffered_bytes += size
        self._m_buf_entries.inc(entries)
        self._m_buf_bytes.inc(size)
        # Wake the sender to start its batchwait (queue was empty) or to send (batch full).
        if was_empty or q.bytes >= self.cfg.batchsize:
            self._wake[tenant].set()

    async def _run(self, key: str) -> None:
        q, wake, cfg = self._queues[key], self._wake[key], self.cfg
        tenant = key or cfg.tenant_id
        while True:
            if not q.chunks:
                if self._closing:
                    return
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), self.idle)
                except TimeoutError:
                    if not q.chunks and not self._closing:  # idle: forget the tenant until it comes back
                        del self._queues[key], self._wake[key], self._tasks[key]
                        return
                continue
            # Wait for the batch to fill or to age, unless closing.
            while not self._closing and q.bytes < cfg.batchsize:
                left = q.first_at + cfg.batchwait - time.monotonic()
                if left <= 0:
                    break
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), left)
                except TimeoutError:
                    break
            batch = q.take(cfg.batchsize)
            entries = sum(map(CHUNK_COUNT, batch))
            size = sum(map(CHUNK_SIZE, batch))
            settled = False
            try:
                settled = await self._send(tenant, batch)
            except asyncio.CancelledError:
                if not self.durable:
                    metrics.count_drop(SHUTDOWN, entries, size, client=self.name)
                    log.error("shutdown: dropped a batch in flight: client=%s tenant=%r entries=%d", self.name, tenant, entries)
                raise
            finally:
                self.buffered_entries -= entries
                self.buffered_bytes -= size
                self._m_buf_entries.dec(entries)
                self._m_buf_bytes.dec(size)
            # Not reached when the task is cancelled: an unsettled batch stays unconfirmed in the WAL.
            if (settled or not self.durable) and self.on_done is not None:
                self.on_done(key, size + CHUNK_OVERHEAD * len(batch))  # in the fan-out's unit (held_size)

    async def _send(self, tenant: str, batch: list[Chunk]) -> bool:
        """Push one batch with retries. True when settled: sent, or dropped for good (counted).

        False when given up because the relay is shutting down: with a WAL that batch is
        replayed on the next start; without one it is counted as dropped (reason shutdown).
        """
        return await self.send_batch(tenant, batch) != SHUTDOWN

    async def send_batch(self, tenant: str, batch: list[Chunk]) -> str:
        """Push one batch now, with the client's retries (429 and Retry-After, 5xx, errors).

        Returns "" once Loki accepted it, else why it was given up (RATE_LIMITED,
        INGESTER_ERROR: counted as dropped; SHUTDOWN). `tenant` is sent as is.
        """
        cfg = self.cfg
        entries = sum(map(CHUNK_COUNT, batch))
        size = sum(map(CHUNK_SIZE, batch))
        body = compress(encode_push(batch, self.labels))
        attempt = 0
        while True:
            async with self._sends:
                res = await self._transport(tenant, body)
            _collect_after(len(body))
            if 200 <= res.status < 300:
                log.debug("sent batch: client=%s tenant=%r entries=%d bytes=%d status=%d",
                          self.name, tenant, entries, len(body), res.status)
                self._m_sent_entries.inc(entries)
                self._m_sent_bytes.inc(size)
                self._m_batches.inc()
                self._m_req_bytes.inc(len(body))
                return ""
            status = str(res.status) if res.status else "error"
            metrics.send_errors.labels(self.name, status).inc()
            again = retry.retriable(res.status, cfg.drop_rate_limited_batches)
            if not again or attempt >= cfg.backoff.max_retries or time.monotonic() >= self._deadline:
                reason = RATE_LIMITED if res.status == 429 else INGESTER_ERROR
                if again and time.monotonic() >= self._deadline:
                    reason = SHUTDOWN
                    if self.durable:
                        log.warning(
                            "shutdown: batch left in the WAL for replay: client=%s tenant=%r entries=%d",
                            self.name, tenant, entries,
                        )
                        return SHUTDOWN
                log.error(
                    "dropping batch: client=%s tenant=%r entries=%d status=%s attempts=%d reason=%s error=%r",
                    self.name, tenant, entries, status, attempt + 1, reason, res.error,
                )
                metrics.count_drop(reason, entries, size, client=self.name)
                return reason
            delay = min(retry.delay(cfg.backoff, attempt, res.retry_after), max(0.0, self._deadline - time.monotonic()))
            attempt += 1
            self._m_retries.inc()
            log.warning(
                "push failed, retrying: client=%s tenant=%r status=%s attempt=%d delay=%.2fs error=%r",
                self.name, tenant, status, attempt, delay, res.error,
            )
            await asyncio.sleep(delay)

    async def close(self, timeout: float) -> None:
        """Send everything queued, retrying until `timeout` seconds have passed, then stop."""
        self._closing = True
        self._deadline = time.monotonic() + timeout
        for ev in self._wake.values():
            ev.set()
        tasks = list(self._tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout + 1)
            for t in pending:
                t.cancel()
            for q in self._queues.values():
                if q.entries and self.durable:
                    log.warning("shutdown: %d entries for client %s stay in the WAL for replay", q.entries, self.name)
                elif q.entries:
                    metrics.count_drop(SHUTDOWN, q.entries, q.bytes, client=self.name)
                    log.error("shutdown: dropped %d entries still queued for client %s", q.entries, self.name)
        http = getattr(self, "_http", None)
        if http is not None:
            await http.aclose()


def dry_run_transport(out: TextIO = sys.stdout) -> Transport:
    """-dry-run: print each entry as Promtail does (time, labels, line) instead of sending."""
    import snappy

    async def send(tenant: str, body: bytes) -> SendResult:
        req = PushRequest()
        req.ParseFromString(snappy.uncompress(body))
        lines = []
        for s in req.streams:
            for e in s.entries:
                ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(e.timestamp.seconds))
                lines.append(f"{ts}.{e.timestamp.nanos:09d}Z\t{s.labels}\t{e.line}")
        out.write("\n".join(lines) + "\n")
        out.flush()
        return SendResult(204)

    return send
