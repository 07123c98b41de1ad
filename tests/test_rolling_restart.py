"""Issue 11, item 2: a real load balancer. nginx (Debian's, installed by .ci/run) runs the shipped
deploy/nginx/loki-relay.conf, ports changed, in front of two relay processes. Under steady push load
through nginx, both relays are restarted one after the other. Every line that got a 2xx must reach
Loki exactly once, and nginx must hand no 5xx to the sender."""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.conftest import ROOT, RelayProcess, free_port
from tests.loki_receiver import Receiver

NGINX_CONF = ROOT / "deploy" / "nginx" / "loki-relay.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DRAIN = "5s"  # the relays' default shutdown delay; it must outlast nginx's fail_timeout and keepalive_timeout


def render(listen: dict[int, int], upstream: dict[int, list[int]]) -> str:
    """The shipped config with its listen ports and upstream servers replaced by local ones."""
    text = NGINX_CONF.read_text()

    def servers(m: re.Match[str]) -> str:
        params = m.group(2).replace(" resolve", "")  # fixed addresses: nothing to resolve
        return "\n    ".join(f"server 127.0.0.1:{p}{params};" for p in upstream[int(m.group(1))])

    text, n = re.subn(r"server relay:(\d+)([^;]*);", servers, text)
    assert n == 3, "the shipped config should have one upstream per default relay port"
    text, n = re.subn(r"listen (\d+);", lambda m: f"listen 127.0.0.1:{listen[int(m.group(1))]};", text)
    assert n == 3
    return text


class Nginx:
    def __init__(self, tmp: Path, listen: dict[int, int], upstream: dict[int, list[int]]) -> None:
        self.dir = tmp / "nginx"
        for d in ("logs", "body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        (self.dir / "loki-relay.conf").write_text(render(listen, upstream))
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the temp dirs below
        (self.dir / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {self.dir}/nginx.pid;\nerror_log {self.dir}/logs/error.log warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"  client_body_temp_path {self.dir}/body;\n  proxy_temp_path {self.dir}/proxy;\n"
            f"  fastcgi_temp_path {self.dir}/fastcgi;\n  uwsgi_temp_path {self.dir}/uwsgi;\n"
            f"  scgi_temp_path {self.dir}/scgi;\n"
            f"  include {self.dir}/loki-relay.conf;\n"
            "}\n"
        )
        self.access = self.dir / "logs" / "access.log"
        cmd = [NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")]
        check = subprocess.run([*cmd, "-t"], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(cmd, stdout=open(self.access, "wb"), stderr=subprocess.STDOUT)
        self.port = listen[3500]

    def wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            assert self.proc.poll() is None, self.error_log()
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/ready", timeout=1)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, "nginx is not listening"
                time.sleep(0.05)

    def error_log(self) -> str:
        p = self.dir / "logs" / "error.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Relay:
    """One relay on fixed ports, so it can be started again where nginx expects it."""

    def __init__(self, tmp: Path, name: str, receiver: Receiver) -> None:
        self.dir = tmp / name
        self.dir.mkdir()
        self.push_port = free_port()
        self.server_port = free_port()
        self.receiver = receiver
        self.proc: RelayProcess | None = None
        self.logs: list[str] = []

    def start(self) -> None:
        cfg: dict[str, Any] = {
            "clients": [{"url": self.receiver.url, "batchwait": "200ms",
                         "backoff_config": {"min_period": "50ms", "max_period": "500ms"}}],
            "scrape_configs": [{"job_name": "push", "loki_push_api": {
                "server": {"http_listen_address": "127.0.0.1", "http_listen_port": self.push_port}}}],
        }
        self.proc = RelayProcess(self.dir, cfg, [f"-server.shutdown-delay={DRAIN}"], None, self.server_port)
        self.proc.wait_ready()

    def stop(self) -> int:
        assert self.proc is not None
        code = self.proc.stop(signal.SIGTERM, timeout=30)
        self.logs.append(self.proc.log())
        return code

    def begin_stop(self) -> None:
        """SIGTERM, then once the drain has begun a second one, which ends it: for the last stop,
        when no load is left for a load balancer to move away."""
        assert self.proc is not None
        self.proc.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while "draining" not in self.proc.log() and self.proc.proc.poll() is None:
            assert time.monotonic() < deadline, self.proc.log()
            time.sleep(0.02)
        if self.proc.proc.poll() is None:
            self.proc.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self) -> int:
        """After begin_stop: its exit code (a third signal could arrive after the handlers are gone)."""
        assert self.proc is not None
        code = self.proc.proc.wait(30)
        self.logs.append(self.proc.log())
        return code


class Load:
    """Steady pushes through nginx from a few senders, each push of unique lines; bounded in count and time."""

    def __init__(self, port: int, senders: int = 3, max_pushes: int = 20_000, max_seconds: float = 120) -> None:
        self.url = f"http://127.0.0.1:{port}/loki/api/v1/push"
        self.max_pushes = max_pushes
        self.deadline = time.monotonic() + max_seconds
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.results: list[tuple[float, int, list[str]]] = []  # (time, status or -1 for a transport error, lines)
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(senders)]

    def run(self, sender: int) -> None:
        with httpx.Client(timeout=30) as client:  # keep-alive to nginx, as real senders do
            n = 0
            while not self.stop_event.is_set() and time.monotonic() < self.deadline and len(self.results) < self.max_pushes:
                lines = [f"s{sender} p{n} l{i}" for i in range(10)]
                now = time.time_ns()
                body = orjson.dumps({"streams": [{"stream": {"app": "rolling", "sender": str(sender)},
                                                  "values": [[str(now + i), ln] for i, ln in enumerate(lines)]}]})
                try:
                    status = client.post(self.url, content=body, headers={"Content-Type": "application/json"}).status_code
                except httpx.TransportError:
                    status = -1
                with self.lock:
                    self.results.append((time.monotonic(), status, lines))
                n += 1
                time.sleep(0.02)  # about 150 pushes a second in all: steady, and light on the shared cores

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(60)

    def served_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(1 for t, s, _ in self.results if start <= t <= end and 200 <= s < 300)


def test_rolling_restart_behind_nginx_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    assert Path(NGINX).exists(), "nginx is not installed (.ci/run installs Debian's)"
    with Receiver.start() as receiver:
        relays = [Relay(tmp_path, name, receiver) for name in ("a", "b")]
        listen = {3500: free_port(), 3600: free_port(), 3700: free_port()}
        unused = [free_port(), free_port()]  # the Lambda and Firehose upstreams: not exercised here
        upstream = {3500: [r.push_port for r in relays], 3600: unused[:1], 3700: unused[1:]}
        nginx = Nginx(tmp_path, listen, upstream)
        try:
            for r in relays:
                r.start()
            nginx.wait_listening()
            with Load(nginx.port) as load:
                time.sleep(1.5)
                down: list[tuple[float, float]] = []
                for r in relays:
                    assert r.stop() == 0, r.logs[-1]
                    gone = time.monotonic()
                    time.sleep(0.5)  # a moment with one relay only
                    r.start()
                    down.append((gone, time.monotonic()))
                    time.sleep(1.5)  # steady load on both again before the next one
            for r in relays:
                r.begin_stop()
            for r in relays:
                assert r.wait_stopped() == 0, r.logs[-1]  # flushes what it holds
        finally:
            nginx.stop()
            for r in relays:
                if r.proc is not None and r.proc.proc.poll() is None:
                    r.proc.stop(signal.SIGKILL, timeout=5)

        statuses = collections.Counter(s for _, s, _ in load.results)
        assert statuses and set(statuses) == {204}, f"{statuses}\n{nginx.error_log()}"  # no 5xx, no errors
        assert len(load.results) >= 100, statuses  # a steady load, not a trickle
        for start, end in down:
            assert load.served_between(start, end) > 0, "no push was served while a relay was down"
        acked = collections.Counter(ln for _, s, lines in load.results if 200 <= s < 300 for ln in lines)
        got = collections.Counter(receiver.lines())
        assert set(got) == set(acked), (f"missing {len(set(acked) - set(got))}, "
                                        f"unexpected {len(set(got) - set(acked))}")
        twice = [ln for ln, c in got.items() if c != 1]
        assert not twice, f"{len(twice)} lines delivered more than once, e.g. {twice[:3]}"
        # The restarts really sent pushes to a relay that was gone, and nginx took them to the other one.
        access = nginx.access.read_text(errors="replace")
        retried = [ln for ln in access.splitlines() if re.search(r"upstream=\S+, ", ln)]
        assert retried, "no push was retried on the next relay: the restarts were not exercised"
