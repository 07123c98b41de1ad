"""Issue 11, item 1: drain for load balancers. On SIGTERM /ready answers 503 at once on every port, the
listeners keep serving for server.shutdown_delay, then today's shutdown runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson
import yaml

from tests.conftest import ROOT, free_port
from tests.loki_receiver import Receiver


def push(port: int, lines: list[str], client: httpx.Client | None = None) -> httpx.Response:
    now = time.time_ns()
    doc = {"streams": [{"stream": {"app": "drain"}, "values": [[str(now + i), ln] for i, ln in enumerate(lines)]}]}
    c = client or httpx
    return c.post(f"http://127.0.0.1:{port}/loki/api/v1/push", content=orjson.dumps(doc),
                  headers={"Content-Type": "application/json"}, timeout=10)


def config(receiver: Receiver, port: int, **server: Any) -> dict[str, Any]:
    return {
        "server": server,
        "clients": [{"url": receiver.url, "batchwait": "100ms",
                     "backoff_config": {"min_period": "50ms", "max_period": "200ms"}}],
        "scrape_configs": [{"job_name": "push", "loki_push_api": {
            "server": {"http_listen_address": "127.0.0.1", "http_listen_port": port}}}],
    }


def ready(port: int) -> int:
    return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code


def test_sigterm_makes_ready_503_at_once_while_listeners_keep_serving(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    rel = start_relay(config(receiver, port), "-server.shutdown-delay=3s")
    assert ready(rel.server_port) == 200 and ready(port) == 200
    assert push(port, ["before"]).status_code == 204
    with httpx.Client() as keepalive:
        assert push(port, ["on a kept connection"], keepalive).headers.get("connection") != "close"
        t0 = time.monotonic()
        rel.proc.send_signal(signal.SIGTERM)
        deadline = t0 + 1.0
        while ready(rel.server_port) == 200:
            assert time.monotonic() < deadline, "/ready still 200 a second after SIGTERM"
            time.sleep(0.02)
        assert ready(port) == 503  # the job listener's /ready too
        assert "draining" in httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).text
        # Still serving, and telling keep-alive clients to reconnect (through the balancer, elsewhere).
        during = push(port, ["during the delay"], keepalive)
        assert during.status_code == 204
        assert during.headers.get("connection") == "close"
    assert rel.proc.poll() is None
    assert rel.proc.wait(15) == 0, rel.log()
    took = time.monotonic() - t0
    assert 2.5 <= took < 10, took
    assert sorted(receiver.lines()) == ["before", "during the delay", "on a kept connection"]
    log = rel.log()
    assert log.index("draining") < log.index("shutting down")


def test_a_second_signal_ends_the_delay(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    rel = start_relay(config(receiver, port), "-server.shutdown-delay=60s")
    assert push(port, ["x"]).status_code == 204
    rel.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert rel.proc.poll() is None and ready(port) == 503
    t0 = time.monotonic()
    rel.proc.send_signal(signal.SIGINT)
    assert rel.proc.wait(15) == 0, rel.log()
    assert time.monotonic() - t0 < 8
    assert receiver.lines() == ["x"]


def test_shutdown_delay_from_the_config_file(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    cfg = config(receiver, port, shutdown_delay="2s")
    # The fixture passes -server.shutdown-delay=0s; a config value must be able to set it when no flag does.
    rel = start_relay(cfg)
    assert rel.stop(signal.SIGTERM, 15) == 0
    # ...so run the same file by hand, without the test default, and time the drain.
    proc = subprocess.Popen([sys.executable, "-m", "relay", f"-config.file={rel.config_path}"], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if ready(rel.server_port) == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert proc.poll() is None and ready(port) == 503
        assert push(port, ["late"]).status_code == 204
        assert proc.wait(15) == 0
        assert 1.5 <= time.monotonic() - t0 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert receiver.lines() == ["late"]


def test_defaults_fit_a_30s_termination_grace() -> None:
    """Kubernetes' terminationGracePeriodSeconds and ECS's stopTimeout both default to 30 s."""
    r = subprocess.run([sys.executable, "-m", "relay", "-check-syntax", "-print-config-stderr"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    server = yaml.safe_load(r.stderr)["server"]
    assert server["shutdown_delay"] == 5.0
    assert server["unready_on_backpressure"] is False
    assert server["shutdown_delay"] + server["graceful_shutdown_timeout"] <= 25  # 5 s left to exit


def test_invalid_shutdown_delay_flag_is_refused() -> None:
    r = subprocess.run([sys.executable, "-m", "relay", "-check-syntax", "-server.shutdown-delay=soon"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "-server.shutdown-delay" in r.stderr


def backpressure_config(receiver: Receiver, port: int, **server: Any) -> dict[str, Any]:
    cfg = config(receiver, port, **server)
    cfg["clients"][0].update(batchwait="10ms", timeout="1s")
    cfg["limits_config"] = {"max_buffered_bytes": "2KiB", "backpressure_wait": "0s"}
    return cfg


def fill(port: int) -> None:
    """Push until the relay refuses for backpressure (Loki is hanging, nothing drains)."""
    for i in range(50):
        if push(port, [f"fill {i} " + "x" * 300]).status_code == 429:
            return
    raise AssertionError("the relay never refused")


def test_ready_stays_200_under_backpressure_by_default(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    rel = start_relay(backpressure_config(receiver, port))
    receiver.hang()
    fill(port)
    assert ready(rel.server_port) == 200 and ready(port) == 200
    receiver.clear_faults()


def test_unready_on_backpressure(receiver: Receiver, start_relay: Any) -> None:
    port = free_port()
    rel = start_relay(backpressure_config(receiver, port, unready_on_backpressure=True))
    assert ready(rel.server_port) == 200
    receiver.hang()
    fill(port)
    assert ready(rel.server_port) == 503 and ready(port) == 503
    assert "max_buffered_bytes" in httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).text
    receiver.clear_faults()
    deadline = time.monotonic() + 20  # hung pushes time out (1 s) and are retried: room comes back
    while ready(port) != 200:
        assert time.monotonic() < deadline, "still not ready after the buffers emptied"
        time.sleep(0.1)
