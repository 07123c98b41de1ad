"""loki-relay: a Promtail-compatible relay that ships logs into Grafana Loki."""

__version__ = "0.1.0"
