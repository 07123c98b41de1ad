"""Every accepted entry goes to every client, as in Promtail."""

from __future__ import annotations

import asyncio

from ..model import Chunk
from .client import LokiClient


class Fanout:
    def __init__(self, clients: list[LokiClient]) -> None:
        self.clients = clients

    def add(self, by_tenant: dict[str, list[Chunk]]) -> None:
        for tenant, chunks in by_tenant.items():
            for client in self.clients:
                client.add(tenant, chunks)

    async def close(self, timeout: float) -> None:
        await asyncio.gather(*(c.close(timeout) for c in self.clients))
