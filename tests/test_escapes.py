"""Issue 9, item 5: label escapes beyond Unicode or half a surrogate pair are a 400, never a 500."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from relay.model import LabelError, parse_labels
from tests.conftest import RelayProcess, free_port, push_config
from tests.loki_receiver import Receiver, encode_push

BAD = [r"\UFFFFFFFF", r"\U00110000", r"\ud800", r"\udfff", r"\U0000DC00"]


@pytest.mark.parametrize("escape", BAD)
def test_parse_labels_refuses_non_code_points(escape: str) -> None:
    with pytest.raises(LabelError, match="not a Unicode code point"):
        parse_labels('{a="x' + escape + '"}')


def test_parse_labels_keeps_valid_escapes() -> None:
    assert parse_labels(r'{a="\U0010FFFF\u00e9\ud7ff\ue000"}') == {"a": "\U0010ffff\u00e9\ud7ff\ue000"}


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Receiver, int]]:
    rx = Receiver.start()
    port = free_port()
    rel = RelayProcess(tmp_path_factory.mktemp("relay"), push_config(rx.url, port), [], None)
    try:
        rel.wait_ready()
        yield rx, port
    finally:
        rel.stop()
        rx.stop()


@pytest.mark.parametrize("escape", BAD)
def test_protobuf_push_with_bad_escape_is_400_and_the_rest_delivered(relay: tuple[Receiver, int], escape: str) -> None:
    rx, port = relay
    rx.reset()
    t = time.time_ns()
    body = encode_push([('{app="bad' + escape + '"}', [(t, "refused")]), ('{app="good"}', [(t, "kept " + escape)])])
    r = httpx.post(f"http://127.0.0.1:{port}/loki/api/v1/push", content=body,
                   headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert r.status_code == 400, r.text
    assert "not a Unicode code point" in r.text
    assert [e["line"] for e in rx.wait_for(1)] == ["kept " + escape]


@pytest.mark.parametrize("escape", BAD)
def test_legacy_json_push_with_bad_escape_is_400(relay: tuple[Receiver, int], escape: str) -> None:
    _, port = relay
    body = orjson.dumps({"streams": [{"labels": '{app="x' + escape + '"}',
                                      "entries": [{"ts": "2024-01-02T03:04:05Z", "line": "l"}]}]})
    r = httpx.post(f"http://127.0.0.1:{port}/api/prom/push", content=body,
                   headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400, r.text
    assert "not a Unicode code point" in r.text
