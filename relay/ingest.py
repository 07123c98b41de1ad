"""Where a listener hands its decoded streams: processing, accounting, then the sinks."""

from __future__ import annotations

from collections.abc import Sequence

from . import metrics
from .config import JobConfig
from .model import Stream
from .pipeline import Outcome, Processor
from .sink import Fanout


class Backpressure(Exception):
    """The relay cannot take more now; the sender should retry later."""

    def __init__(self, reason: str, retry_after: float = 1.0) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Ingest:
    def __init__(self, job: JobConfig, processor: Processor, sink: Fanout) -> None:
        self.job = job
        self.processor = processor
        self.sink = sink
        self._m_entries = metrics.received_entries.labels(job.name)
        self._m_bytes = metrics.received_bytes.labels(job.name)

    async def push(self, streams: Sequence[Stream], tenant: str, receive_ns: int) -> Outcome:
        """Process and queue streams; returns what was accepted and dropped."""
        received = received_bytes = 0
        for s in streams:
            received += len(s.entries.entries)
            received_bytes += s.entries.ByteSize()
        self._m_entries.inc(received)
        self._m_bytes.inc(received_bytes)
        out = self.processor.process(streams, tenant, receive_ns)
        for reason, n in out.dropped.items():
            metrics.count_drop(reason, n, out.dropped_bytes[reason], job=self.job.name)
        if out.truncated:
            metrics.truncated_entries.labels(self.job.name).inc(out.truncated)
        if out.chunks:
            self.sink.add(out.chunks)
        return out

    def count_invalid(self, entries: int, size: int) -> None:
        """Entries a source could not decode (bad labels, bad timestamps ...)."""
        metrics.count_drop("invalid", entries, size, job=self.job.name)
