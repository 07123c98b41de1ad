"""Prometheus metrics, served on the server port at /metrics.

Every metric is documented in the README. Children are looked up per request or
per batch, never per entry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # type: ignore[no-untyped-call]  # the _created series double the output and nobody graphs them

REGISTRY = CollectorRegistry(auto_describe=True)

received_entries = Counter(
    "loki_relay_received_entries_total", "Entries received, before processing.", ["job"], registry=REGISTRY
)
received_bytes = Counter(
    "loki_relay_received_bytes_total", "Protobuf-encoded size of the entries received.", ["job"], registry=REGISTRY
)
requests = Histogram(
    "loki_relay_request_duration_seconds",
    "Time to handle a request on a listener, by job, route and HTTP status.",
    ["job", "route", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
sent_entries = Counter(
    "loki_relay_sent_entries_total", "Entries Loki accepted, per client.", ["client"], registry=REGISTRY
)
sent_bytes = Counter(
    "loki_relay_sent_bytes_total", "Encoded entry bytes Loki accepted, per client.", ["client"], registry=REGISTRY
)
sent_batches = Counter(
    "loki_relay_sent_batches_total", "Batches Loki accepted, per client.", ["client"], registry=REGISTRY
)
request_bytes = Counter(
    "loki_relay_sent_request_bytes_total", "Compressed push request bytes sent, per client.", ["client"], registry=REGISTRY
)
dropped_entries = Counter(
    "loki_relay_dropped_entries_total",
    "Entries dropped, by reason; job is set for drops while processing, client for drops while sending.",
    ["reason", "job", "client"],
    registry=REGISTRY,
)
dropped_bytes = Counter(
    "loki_relay_dropped_bytes_total", "Encoded bytes of the dropped entries.", ["reason", "job", "client"],
    registry=REGISTRY,
)
batch_retries = Counter(
    "loki_relay_batch_retries_total", "Push attempts to Loki that failed and were retried.", ["client"],
    registry=REGISTRY,
)
send_errors = Counter(
    "loki_relay_send_errors_total", "Failed push attempts, by client and status (HTTP code or 'error').",
    ["client", "status"], registry=REGISTRY,
)
buffered_entries = Gauge(
    "loki_relay_buffered_entries", "Entries waiting to be sent, per client.", ["client"], registry=REGISTRY
)
buffered_bytes = Gauge(
    "loki_relay_buffered_bytes", "Encoded bytes waiting to be sent, per client.", ["client"], registry=REGISTRY
)
truncated_entries = Counter(
    "loki_relay_truncated_entries_total", "Lines cut to limits_config.max_line_size.", ["job"], registry=REGISTRY
)


def count_drop(reason: str, entries: int, size: int, job: str = "", client: str = "") -> None:
    dropped_entries.labels(reason, job, client).inc(entries)
    dropped_bytes.labels(reason, job, client).inc(size)
