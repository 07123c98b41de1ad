"""Shared fixtures: the Loki stand-in and the relay, both as real processes."""

from __future__ import annotations

import compileall
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.loki_receiver import Receiver

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# The real AWS payloads beside the repository (../shared/fixtures) are an extra cross-check: its module is
# collected only where that folder exists (CI has it); a clone alone runs on tests/payloads.
SHARED_FIXTURES = Path(os.environ.get("RELAY_SHARED_FIXTURES", ROOT.parent / "shared" / "fixtures"))
collect_ignore = [] if SHARED_FIXTURES.is_dir() else ["test_shared_fixtures.py"]

# Tests speak plain HTTP to 127.0.0.1 (TLS tests bring their own CA), yet httpx loads the whole
# system CA bundle for every client it makes: about 25 ms of CPU, thousands of times a run. An
# empty CA directory, which OpenSSL reads only on demand, makes each client cheap.
os.environ.pop("SSL_CERT_FILE", None)
os.environ["SSL_CERT_DIR"] = tempfile.mkdtemp(prefix="loki-relay-tests-no-cas-")

# The modules that take longest, slowest first (seconds on our 2-core machine, measured with
# --durations). They are handed to the xdist workers first (with --no-loadscope-reorder, see
# pyproject.toml), so no long module starts last while the other worker sits idle.
SLOW_MODULES = {
    "test_rolling_restart.py": 20, "test_faults.py": 26, "test_client.py": 21, "test_backpressure.py": 20,
    "test_cli.py": 18, "test_drain.py": 17, "test_push_api.py": 16, "test_backfill.py": 15,
    "test_firehose.py": 12, "test_aws_lambda.py": 12, "test_hostile.py": 11, "test_connections.py": 11,
    "test_loki_receiver.py": 11, "test_tenants.py": 10, "test_stages_blackbox.py": 10, "test_shutdown.py": 9,
    "test_bounded_work.py": 8,
}


def pytest_sessionstart(session: pytest.Session) -> None:
    # Every test starts relays as new processes. Where PYTHONDONTWRITEBYTECODE is set (as on our
    # machines), each would compile the relay's modules again; compile them once, up front.
    if "PYTEST_XDIST_WORKER" not in os.environ:
        compileall.compile_dir(ROOT / "relay", quiet=1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: -SLOW_MODULES.get(item.path.name, 0))  # stable: the rest keep their order



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RelayProcess:
    """`python -m relay` with a given config, started and stopped by the test."""

    def __init__(self, tmp: Path, config: dict[str, Any] | None, args: list[str], env: dict[str, str] | None,
                 server_port: int = 0) -> None:
        self.server_port = server_port or free_port()
        self.config = config
        self.config_path: Path | None = None
        # No drain delay unless a test asks for one (a later -server.shutdown-delay wins): tests that
        # stop a relay are not behind a load balancer, and the delay would only slow them down.
        cmd = [sys.executable, "-m", "relay", f"-server.http-listen-port={self.server_port}", "-server.shutdown-delay=0s"]
        if config is not None:
            config.setdefault("server", {})
            config["server"].setdefault("http_listen_address", "127.0.0.1")
            config["server"]["http_listen_port"] = self.server_port
            self.config_path = tmp / "relay.yaml"
            self.config_path.write_text(yaml.safe_dump(config))
            cmd.append(f"-config.file={self.config_path}")
        cmd += args
        self.log_path = tmp / "relay.log"
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=open(self.log_path, "wb"),
            env={**os.environ, **(env or {})},
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> RelayProcess:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"relay exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.server_port}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"relay not ready after {timeout}s:\n{self.log()}")

    def url(self, port: int, path: str = "/loki/api/v1/push") -> str:
        return f"http://127.0.0.1:{port}{path}"

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.server_port}/metrics", timeout=5).text

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            metric, _, rest = head.partition("{")
            if metric != name:
                continue
            pairs = dict(p.split("=", 1) for p in rest.rstrip("}").split(",") if "=" in p)
            if all(pairs.get(k, "").strip('"') == v for k, v in labels.items()):
                total += float(value)
        return total

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver.start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def start_relay(tmp_path: Path) -> Iterator[Any]:
    """start_relay(config_dict | None, *args, env=None, ready=True) -> RelayProcess."""
    started: list[RelayProcess] = []

    def start(config: dict[str, Any] | None = None, *args: str, env: dict[str, str] | None = None,
              ready: bool = True) -> RelayProcess:
        p = RelayProcess(tmp_path, config, list(args), env)
        started.append(p)
        return p.wait_ready() if ready else p

    yield start
    for p in started:
        p.stop(signal.SIGKILL if p.proc.poll() is None else signal.SIGTERM, timeout=5)


def push_config(receiver_url: str, port: int, **job: Any) -> dict[str, Any]:
    """A one-job loki_push_api config pointed at the stand-in, with a short batchwait for tests."""
    block = {"server": {"http_listen_address": "127.0.0.1", "http_listen_port": port}, **job}
    return {
        "clients": [{"url": receiver_url, "batchwait": "100ms", "backoff_config": {"min_period": "50ms", "max_period": "500ms"}}],
        "scrape_configs": [{"job_name": "push", "loki_push_api": block}],
    }
