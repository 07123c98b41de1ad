"""Issue 9, item 9: each thing is logged once at start (and at stop), however many listeners run."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from tests.conftest import free_port
from tests.loki_receiver import Receiver


def test_start_and_stop_are_logged_once_with_several_listeners(receiver: Receiver, start_relay: Any) -> None:
    jobs = [{"job_name": f"push{i}", "loki_push_api": {"server": {"http_listen_address": "127.0.0.1",
                                                                  "http_listen_port": free_port()}}} for i in range(3)]
    relay = start_relay({"clients": [{"url": receiver.url}], "scrape_configs": jobs})
    assert relay.stop() == 0
    messages = [re.sub(r"^ts=\S+ ", "", line) for line in relay.log().splitlines() if line.strip()]
    repeated = {m: n for m, n in Counter(messages).items() if n > 1}
    assert repeated == {}
    assert sum("listening:" in m for m in messages) == 4  # the server port and three jobs, each named once
    assert sum("loki-relay ready" in m for m in messages) == 1
    assert not any("server process" in m for m in messages)
