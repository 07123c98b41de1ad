"""Sinks: batching (`batch`), the Loki client (`client`), fan-out to every client (`fanout`), the
write-ahead log (`wal`). Nothing here knows about AWS."""
