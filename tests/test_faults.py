"""Faults upstream and in the relay itself, with real processes: nothing acknowledged is lost.

Every pushed line is unique, and every test counts exactly: the receiver must hold
every line the relay answered 2xx for (duplicates only where Loki dedups them: same
stream, timestamp and line).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, push_config
from tests.loki_receiver import Receiver, encode_push

PROTO = {"content-type": "application/x-protobuf"}


class Pusher:
    """Pushes unique lines from threads; remembers which lines were acknowledged (2xx)."""

    def __init__(self, url: str, prefix: str, lines: int = 20, tenant: str | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self.lines = lines
        self.tenant = tenant
        self.acked: list[str] = []
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._seq = 0
        self._threads: list[threading.Thread] = []

    def push_one(self, http: httpx.Client, labels: str = '{job="faults"}') -> int:
        with self._lock:
            n = self._seq
            self._seq += 1
        lines = [f"{self.prefix} req={n} line={i}" for i in range(self.lines)]
        now = time.time_ns()
        body = encode_push([(labels, [(now + i, ln) for i, ln in enumerate(lines)])])
        headers = {**PROTO, **({"X-Scope-OrgID": self.tenant} if self.tenant else {})}
        try:
            status = http.post(self.url, content=body, headers=headers).status_code
        except httpx.HTTPError:
            status = 0
        with self._lock:
            self.statuses[status] += 1
            if 200 <= status < 300:
                self.acked += lines
        return status

    def push(self, requests: int) -> None:
        with httpx.Client(timeout=30) as http:
            for _ in range(requests):
                self.push_one(http)

    def start(self, threads: int = 4, pause: float = 0.0) -> Pusher:
        def run() -> None:
            with httpx.Client(timeout=30) as http:
                while not self._stop.is_set():
                    if self.push_one(http) == 0:
                        time.sleep(0.05)
                    if pause:
                        time.sleep(pause)

        self._threads = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)


def wait_lines(rx: Receiver, want: list[str] | set[str], timeout: float = 60.0) -> list[str]:
    """Until the receiver holds every wanted line; returns everything it holds."""
    want = set(want)
    deadline = time.monotonic() + timeout
    while True:
        got = rx.lines()
        missing = want - set(got)
        if not missing:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(missing)} of {len(want)} acknowledged lines never arrived, e.g. {sorted(missing)[:3]}")
        time.sleep(0.1)


def no_unexplained_duplicates(rx: Receiver) -> None:
    """Duplicates only where Loki would dedup: same stream, timestamp and line."""
    seen: Counter[str] = Counter()
    keys: dict[str, set[tuple[Any, ...]]] = {}
    for e in rx.entries():
        seen[e["line"]] += 1
        keys.setdefault(e["line"], set()).add((e["tenant"], e["labels_raw"], e["ts"]))
    for line, n in seen.items():
        if n > 1:
            assert len(keys[line]) == 1, f"{line!r} delivered {n} times with different streams/timestamps"


def fault_config(url: str, port: int, **client: Any) -> dict[str, Any]:
    cfg = push_config(url, port)
    cfg["clients"][0].update({"batchsize": 16384, "timeout": "2s",
                              "backoff_config": {"min_period": "100ms", "max_period": "1s", "max_retries": 100}})
    cfg["clients"][0].update(client)
    return cfg


OUTAGE_S = 2.5  # several send timeouts and backoff rounds of the client below, not a wall-clock figure


def test_upstream_down_then_back_nothing_lost(start_relay) -> None:
    rx = Receiver.start()
    rx_port = rx.port
    port = free_port()
    # short timeout and backoff: an outage of a few seconds spans many failed sends and retries
    relay = start_relay(fault_config(rx.url, port, timeout="500ms",
                                     backoff_config={"min_period": "50ms", "max_period": "400ms", "max_retries": 1000}))
    p = Pusher(relay.url(port), "outage")
    p.push(5)
    wait_lines(rx, p.acked, 10)
    before = set(p.acked)  # in the first receiver's memory, which goes away with it
    rx.stop()  # a real outage: nothing listens on the port
    try:
        start = time.monotonic()
        p.start(threads=2, pause=0.1)
        time.sleep(OUTAGE_S)
        p.stop()
        during = len(p.acked)
        assert relay.metric("loki_relay_send_errors_total", status="error") >= 3  # retried, again and again
        assert time.monotonic() - start >= OUTAGE_S
    finally:
        rx = Receiver.start(port=rx_port)
    try:
        p.push(5)
        after = set(p.acked) - before
        got = wait_lines(rx, after, 60)
        assert during - len(before) > 100  # entries were taken during the outage, not refused
        assert relay.metric("loki_relay_dropped_entries_total") == 0
        assert after <= set(got)
        no_unexplained_duplicates(rx)
    finally:
        rx.stop()


def test_429_then_204_nothing_lost(start_relay, receiver: Receiver) -> None:
    port = free_port()
    relay = start_relay(fault_config(receiver.url, port))
    receiver.fail(429, count=5, retry_after="0")
    p = Pusher(relay.url(port), "ratelimited")
    p.push(20)
    got = wait_lines(receiver, p.acked, 30)
    assert len(got) == len(set(got)) == 20 * 20
    assert relay.metric("loki_relay_send_errors_total", status="429") >= 5
    assert relay.metric("loki_relay_dropped_entries_total") == 0


def test_400_drops_that_batch_only_and_counts_it(start_relay, receiver: Receiver) -> None:
    port = free_port()
    relay = start_relay(fault_config(receiver.url, port))
    receiver.fail(400, count=1, body="bad batch")
    p = Pusher(relay.url(port), "bad")
    with httpx.Client() as http:
        assert p.push_one(http) == 204  # becomes the refused batch
        deadline = time.monotonic() + 10
        while relay.metric("loki_relay_dropped_entries_total", reason="ingester_error") < 20:
            assert time.monotonic() < deadline, relay.log()
            time.sleep(0.05)
        first = list(p.acked)
        for _ in range(10):
            assert p.push_one(http) == 204
    rest = [ln for ln in p.acked if ln not in first]
    got = wait_lines(receiver, rest, 10)
    assert not set(first) & set(got)
    assert relay.metric("loki_relay_dropped_entries_total", reason="ingester_error") == 20
    assert relay.metric("loki_relay_send_errors_total", status="400") == 1
    assert "dropping batch" in relay.log() and "status=400" in relay.log()


def test_hanging_upstream_other_tenants_and_clients_flow(start_relay, receiver: Receiver) -> None:
    other = Receiver.start()
    try:
        port = free_port()
        cfg = fault_config(receiver.url, port, timeout="1s")
        cfg["clients"].append({**cfg["clients"][0], "url": other.url, "name": "other"})
        relay = start_relay(cfg)
        receiver.hang(tenant="slow")  # this receiver never answers tenant "slow"
        slow = Pusher(relay.url(port), "slow", tenant="slow")
        fast = Pusher(relay.url(port), "fast", tenant="fast")
        slow.push(3)
        time.sleep(1.5)  # the slow tenant's batch is in flight, timing out and retrying
        t0 = time.monotonic()
        fast.push(10)
        wait_lines(receiver, fast.acked, 5)  # same client, other tenant: not held up
        wait_lines(other, fast.acked + slow.acked, 5)  # other client: gets everything
        assert time.monotonic() - t0 < 5
        assert not set(slow.acked) & set(receiver.lines())
        assert relay.metric("loki_relay_send_errors_total", status="error") >= 1  # timeouts
        assert relay.metric("loki_relay_batch_retries_total") >= 1
        receiver.clear_faults()
        wait_lines(receiver, slow.acked, 15)
        assert relay.metric("loki_relay_dropped_entries_total") == 0
    finally:
        other.stop()


def test_sigterm_under_load_delivers_everything_acknowledged(start_relay, receiver: Receiver) -> None:
    port = free_port()
    relay = start_relay(fault_config(receiver.url, port, batchsize="256KiB"))
    receiver.delay(0.2)  # upstream slower than the senders: a backlog builds
    p = Pusher(relay.url(port), "sigterm").start(threads=4, pause=0.01)
    time.sleep(3)
    assert relay.proc.poll() is None
    relay.proc.send_signal(signal.SIGTERM)
    code = relay.proc.wait(60)
    p.stop()
    assert code == 0, relay.log()
    assert len(p.acked) > 1000
    got = receiver.lines()  # the relay has exited: everything must be there already
    assert set(p.acked) <= set(got), f"{len(set(p.acked) - set(got))} acknowledged lines lost"
    assert "dropped" not in relay.log()


def test_kill9_under_load_with_wal_loses_nothing_acknowledged(start_relay, receiver: Receiver, tmp_path: Path) -> None:
    port = free_port()
    cfg = fault_config(receiver.url, port)
    cfg["wal"] = {"enabled": True, "dir": str(tmp_path / "wal"), "sync": "always"}
    relay = start_relay(cfg)
    receiver.delay(0.3)  # a backlog builds, held in memory and in the WAL
    p = Pusher(relay.url(port), "kill9").start(threads=4)
    time.sleep(2)
    relay.proc.kill()
    relay.proc.wait(10)
    p.stop()
    acked = set(p.acked)
    assert len(acked) > 500
    assert list((tmp_path / "wal").glob("*.wal")), "nothing in the WAL"
    receiver.clear_faults()
    relay2 = start_relay(cfg)
    got = wait_lines(receiver, acked, 60)
    assert acked <= set(got)
    no_unexplained_duplicates(receiver)
    assert relay2.metric("loki_relay_wal_replayed_entries_total") > 0
    # Once everything is confirmed, the old segments are gone.
    deadline = time.monotonic() + 10
    while relay2.metric("loki_relay_wal_segments") > 1:
        assert time.monotonic() < deadline, sorted(x.name for x in (tmp_path / "wal").iterdir())
        time.sleep(0.1)


@pytest.mark.parametrize("sync", ["always", "200ms"])
def test_wal_torn_tail_after_kill9_keeps_earlier_records(start_relay, receiver: Receiver, tmp_path: Path,
                                                         sync: str) -> None:
    port = free_port()
    cfg = fault_config(receiver.url, port)
    cfg["wal"] = {"enabled": True, "dir": str(tmp_path / "wal"), "sync": sync}
    relay = start_relay(cfg)
    receiver.fail(503, count=None)  # nothing leaves: everything stays in the WAL
    p = Pusher(relay.url(port), "torn")
    p.push(10)
    relay.proc.kill()
    relay.proc.wait(10)
    segs = sorted((tmp_path / "wal").glob("*.wal"))
    assert segs
    with open(segs[-1], "ab") as f:  # a record cut short by the crash
        f.write(b"\x40\x00\x00\x00\x12\x34\x56\x78partial")
    receiver.clear_faults()
    relay2 = start_relay(cfg)
    got = wait_lines(receiver, p.acked, 30)
    assert set(p.acked) <= set(got)
    assert relay2.metric("loki_relay_wal_corrupt_bytes_total") == 15
    assert "torn or corrupt" in relay2.log()
