"""loki-relay's tests, a package so that its helpers (the Loki stand-in `tests.loki_receiver`, the relay
process in `tests.conftest`, the sample payloads `tests.payloads`) are imported by name, not by path."""
