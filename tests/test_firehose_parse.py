"""relay.aws.firehose: Firehose HTTP-endpoint bodies -> streams, on Alloy's real test bodies."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.aws.firehose import (
    FirehoseBatch,
    FirehoseError,
    FirehoseTooLarge,
    check_access_key,
    parse_request,
    response_body,
    sanitize_label_name,
)
from tests import payloads
from tests.payloads import ACCOUNT

RECEIVE_NS = 1_700_000_000_123_456_789
MAX = 1 << 20
SOURCE_ARN = f"arn:aws:firehose:eu-west-3:{ACCOUNT}:deliverystream/relay-test-stream"
HEADER_ID = "header-request-id"

# What our Firehose payloads hold (tests/payloads/make.py).
DIRECT_PUT_ID = "7d6c5b4a-3928-4716-a5f4-e3d2c1b0a998"
DIRECT_PUT_MS = 1741944700250
CW_REQUEST_ID = "1f2e3d4c-5b6a-4798-8a9b-c0d1e2f3a4b5"  # cw-mixed.json
CONTROL_LINE = "CWL CONTROL MESSAGE: Checking health of destination Firehose."
CW_LABELS = {
    "__aws_owner": ACCOUNT,
    "__aws_cw_log_group": "/aws/lambda/thumbnailer",
    "__aws_cw_log_stream": "2025/03/14/[$LATEST]0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "__aws_cw_matched_filters": "thumbs-to-firehose",
    "__aws_cw_msg_type": "DATA_MESSAGE",
}
CW_TIMESTAMPS = [1741944600000, 1741944600180, 1741944600181, 1741944600240, 1741944600242, 1741944600242]
CW_FIRST_LINE = "INIT_START Runtime Version: python:3.12.v31\n"
CW_LAST_LINE = (
    "REPORT RequestId: c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f\tDuration: 61.70 ms\tBilled Duration: 62 ms\t"
    "Memory Size: 256 MB\tMax Memory Used: 81 MB\t\n"
)
DIRECT_PUT_LINES = [
    '{"sensor":"room-4","celsius":21.5,"ok":true}',
    '{"sensor":"room-5","celsius":29.25,"ok":false}',
    '{"sensor":"cellar","celsius":11.0,"ok":true}',
]


def fixture(name: str) -> bytes:
    return payloads.read(f"firehose/{name}")


def parse(body: bytes, headers: dict[str, str] | None = None, *, gz: bool = False, **kw: Any) -> FirehoseBatch:
    hdrs = {"X-Amz-Firehose-Source-Arn": SOURCE_ARN, **(headers or {})}
    if gz:
        body = gzip.compress(body)
        hdrs["Content-Encoding"] = "gzip"
    kw.setdefault("use_incoming_timestamp", False)
    kw.setdefault("max_size", MAX)
    return parse_request(body, hdrs, receive_ns=RECEIVE_NS, **kw)


def entries(stream: Any) -> list[tuple[int, str]]:
    return [(e.timestamp.seconds * 1_000_000_000 + e.timestamp.nanos, e.line) for e in stream.entries.entries]


def body_of(*payloads: bytes, **extra: Any) -> bytes:
    records = [{"data": base64.b64encode(p).decode()} for p in payloads]
    return orjson.dumps({"requestId": "body-id", "timestamp": 1, **extra, "records": records})


def cw_payload(msg_type: str = "DATA_MESSAGE", group: str = "g", stream: str = "s", events: int = 2) -> bytes:
    doc = {
        "messageType": msg_type,
        "owner": "111122223333",
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["f1", "f2"],
        "logEvents": [{"id": str(i), "timestamp": 1000 + i, "message": f"{group} {i}"} for i in range(events)],
    }
    return gzip.compress(json.dumps(doc).encode())


# --- the fixtures, plain and gzipped ------------------------------------------------------------

gz_param = pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])


@gz_param
def test_direct_put(gz: bool) -> None:
    b = parse(fixture("direct-put.json"), gz=gz)
    assert b.request_id == DIRECT_PUT_ID  # no header: the body's
    assert b.source_arn == SOURCE_ARN
    assert b.tenant is None
    assert (b.records, b.entries, b.control_messages, b.skipped) == (3, 3, 0, {})
    [s] = b.streams
    assert s.labels == {
        "__aws_firehose_request_id": DIRECT_PUT_ID,
        "__aws_firehose_source_arn": SOURCE_ARN,
    }
    assert entries(s) == [(RECEIVE_NS + i, line) for i, line in enumerate(DIRECT_PUT_LINES)]


@gz_param
def test_direct_put_incoming_timestamp_is_the_request_timestamp(gz: bool) -> None:
    b = parse(fixture("direct-put.json"), gz=gz, use_incoming_timestamp=True)
    assert [ts for ts, _ in entries(b.streams[0])] == [DIRECT_PUT_MS * 1_000_000 + i for i in range(3)]


@gz_param
def test_direct_put_non_json(gz: bool) -> None:
    b = parse(fixture("direct-put-text.json"), {"X-Amz-Firehose-Request-Id": HEADER_ID}, gz=gz)
    assert b.request_id == HEADER_ID
    [s] = b.streams
    assert s.labels["__aws_firehose_request_id"] == HEADER_ID
    assert entries(s) == [(RECEIVE_NS, "temperature alarm cleared in room 5")]


@gz_param
def test_cloudwatch_mixed(gz: bool) -> None:
    b = parse(fixture("cw-mixed.json"), gz=gz)
    assert b.request_id == CW_REQUEST_ID
    assert (b.records, b.entries, b.control_messages, b.skipped) == (2, 6, 1, {})
    [s] = b.streams
    common = {"__aws_firehose_request_id": CW_REQUEST_ID, "__aws_firehose_source_arn": SOURCE_ARN}
    assert s.labels == {**common, **CW_LABELS}
    for name, value in CW_LABELS.items():  # field by field, for a readable failure
        assert s.labels[name] == value
    got = entries(s)
    assert [ts for ts, _ in got] == [RECEIVE_NS + i for i in range(6)]  # 1 ns apart: Loki merges equal ones
    assert got[0][1] == CW_FIRST_LINE and got[-1][1] == CW_LAST_LINE
    assert CONTROL_LINE not in {line for _, line in got}


@gz_param
def test_cloudwatch_incoming_timestamps_are_the_events(gz: bool) -> None:
    b = parse(fixture("cw-data.json"), gz=gz, use_incoming_timestamp=True)
    assert [ts for ts, _ in entries(b.streams[0])] == [ms * 1_000_000 for ms in CW_TIMESTAMPS]


def test_times_are_the_earliest_and_latest_entry_of_every_stream() -> None:
    # The time window trusts these bounds (they spare it a parse of the entries): they must be exact.
    body = body_of(cw_payload(group="a", events=3), cw_payload(group="b", events=2), b"direct put")
    b = parse(body, use_incoming_timestamp=True)
    every = [ts for s in b.streams for ts, _ in entries(s)]
    # the Direct PUT record at the request time (1 ms), the last CloudWatch event at 1002 ms
    assert len(every) == 6 and b.times == (min(every), max(every)) == (1_000_000, 1_002_000_000)
    assert parse(fixture("cw-control.json")).times is None


@gz_param
def test_cloudwatch_only_data(gz: bool) -> None:
    b = parse(fixture("cw-data.json"), gz=gz)
    assert (b.records, b.entries, b.control_messages, b.skipped) == (1, 6, 0, {})
    [s] = b.streams
    assert {k: s.labels[k] for k in CW_LABELS} == CW_LABELS


@gz_param
def test_cloudwatch_only_control_messages_are_counted_not_ingested(gz: bool) -> None:
    b = parse(fixture("cw-control.json"), gz=gz)
    assert (b.records, b.entries, b.control_messages, b.skipped, b.streams) == (1, 0, 1, {}, [])


@gz_param
def test_control_and_bad_record(gz: bool) -> None:
    b = parse(fixture("cw-control-and-bad.json"), gz=gz)
    assert (b.records, b.entries, b.control_messages, b.streams) == (2, 0, 1, [])
    assert b.skipped == {"base64-decode": 1}


# --- records ------------------------------------------------------------------------------------


def test_undecodable_records_are_skipped_per_reason_and_the_rest_kept() -> None:
    bomb = gzip.compress(b"\0" * (MAX + 1))
    body = orjson.dumps(
        {
            "records": [
                {"data": "not base64!"},
                {"data": "YQ"},  # missing padding
                {"data": "é"},  # not even ASCII
                {"data": base64.b64encode(b"\x1f\x8b\x08garbage").decode()},
                {"data": base64.b64encode(gzip.compress(b"just text")).decode()},
                {"data": base64.b64encode(gzip.compress(b'{"other": "json"}')).decode()},
                {"data": base64.b64encode(bomb).decode()},
                {"data": ""},
                {"data": base64.b64encode(b"kept").decode()},
                {"data": base64.b64encode(cw_payload()).decode()},
            ]
        }
    )
    b = parse(body)
    assert b.skipped == {"base64-decode": 3, "gzip-deflate": 1, "cw-json-decode": 2, "too-large": 1, "empty": 1}
    assert b.records == 10 and b.entries == 3
    assert [line for s in b.streams for _, line in entries(s)] == ["kept", "g 0", "g 1"]


def test_streams_group_identical_label_sets() -> None:
    a, b_, control = cw_payload(group="a"), cw_payload(group="b"), cw_payload("CONTROL_MESSAGE")
    body = body_of(b"one", a, b"two", b_, a, control)
    b = parse(body)
    assert b.control_messages == 1 and b.entries == 8
    by_group = {s.labels.get("__aws_cw_log_group"): [line for _, line in entries(s)] for s in b.streams}
    assert by_group == {None: ["one", "two"], "a": ["a 0", "a 1", "a 0", "a 1"], "b": ["b 0", "b 1"]}
    a = next(s for s in b.streams if s.labels.get("__aws_cw_log_group") == "a")
    assert a.labels["__aws_cw_matched_filters"] == "f1,f2"
    assert a.labels["__aws_owner"] == "111122223333"
    assert a.labels["__aws_cw_log_stream"] == "s"


def test_empty_envelope_fields_make_no_label() -> None:
    b = parse(body_of(cw_payload(group="", stream="")))
    [s] = b.streams
    assert "__aws_cw_log_group" not in s.labels and "__aws_cw_log_stream" not in s.labels
    assert s.labels["__aws_cw_msg_type"] == "DATA_MESSAGE"


def test_split_lines() -> None:
    body = body_of(b"a\r\nb\n\nc\n", b"single", b"\n\n")
    assert [line for _, line in entries(parse(body, split_lines=True).streams[0])] == ["a", "b", "c", "single"]
    assert parse(body, split_lines=True).skipped == {"empty": 1}
    assert [line for _, line in entries(parse(body).streams[0])] == ["a\r\nb\n\nc\n", "single", "\n\n"]


def test_invalid_utf8_is_replaced() -> None:
    b = parse(body_of(b"ok \xff\xfe end"))
    assert entries(b.streams[0]) == [(RECEIVE_NS, "ok \ufffd\ufffd end")]


def test_incoming_timestamp_falls_back_to_receive_time() -> None:
    for ts in (None, str(DIRECT_PUT_MS), 1.5, True):
        body = orjson.dumps({"timestamp": ts, "records": [{"data": "YQ=="}]})
        assert entries(parse(body, use_incoming_timestamp=True).streams[0]) == [(RECEIVE_NS, "a")]


# --- headers ------------------------------------------------------------------------------------


def test_request_id_header_beats_body_and_defaults_to_empty() -> None:
    body = fixture("direct-put.json")
    assert parse(body, {"x-amz-firehose-request-id": HEADER_ID}).request_id == HEADER_ID  # any case
    assert parse(body).request_id == DIRECT_PUT_ID
    b = parse(b'{"records": [{"data": "YQ=="}]}', {"X-Amz-Firehose-Source-Arn": ""})
    assert b.request_id == "" and b.source_arn == ""
    assert b.streams[0].labels == {}  # empty values make no label


def test_common_attributes_labels_and_tenant() -> None:
    attrs = {
        "commonAttributes": {
            "lbl_env": "prod",
            "lbl_l@bel1": "v1",  # Alloy's test cases
            "lbl_L@bEl1%": "v2",
            "lbl_0mylable": "dropped",
            "lbl_": "dropped",
            "lbl_team.name-x": "v3",
            "lbl_camelCase2Go": "v4",
            "tenant_id": "acme",
            "other": "ignored",
        }
    }
    b = parse(fixture("cw-mixed.json"), {"X-Amz-Firehose-Common-Attributes": json.dumps(attrs)})
    assert b.tenant == "acme"
    assert b.invalid_attributes == 2
    [s] = b.streams
    assert {k: v for k, v in s.labels.items() if not k.startswith("__")} == {
        "env": "prod",
        "l_bel1": "v1",
        "l_b_el1_percent": "v2",
        "team_name_x": "v3",
        "camelCase2Go": "v4",  # valid already: left alone
    }
    assert s.labels["__aws_cw_log_group"] == CW_LABELS["__aws_cw_log_group"]
    assert "tenant_id" not in s.labels and "__tenant_id__" not in s.labels


def test_sanitize_label_name_matches_alloy() -> None:
    assert sanitize_label_name("l@bel1") == "l_bel1"
    assert sanitize_label_name("L@bEl1%") == "l_b_el1_percent"
    assert sanitize_label_name("my.Label Name") == "my_label_name"
    assert sanitize_label_name("a1B") == "a1_b"
    assert sanitize_label_name("0mylable") == "0mylable"  # still invalid: the caller drops it


@pytest.mark.parametrize(
    "header",
    [
        "!@#$%^&*()_",
        "[]",
        '{"commonAttributes": ["x"]}',
        '{"commonAttributes": {"lbl_a": 1}}',
        '{"commonAttributes": "x"}',
    ],
)
def test_bad_common_attributes_are_ignored_whole(header: str) -> None:
    b = parse(body_of(b"x"), {"X-Amz-Firehose-Common-Attributes": header})
    assert b.invalid_attributes == 1 and b.tenant is None
    assert set(b.streams[0].labels) == {"__aws_firehose_request_id", "__aws_firehose_source_arn"}


def test_tenant_header_is_the_fallback() -> None:
    assert parse(body_of(b"x"), {"X-Scope-OrgID": "t1"}).tenant == "t1"
    attrs = json.dumps({"commonAttributes": {"tenant_id": "t2"}})
    assert parse(body_of(b"x"), {"X-Scope-OrgID": "t1", "X-Amz-Firehose-Common-Attributes": attrs}).tenant == "t2"
    assert parse(body_of(b"x"), {"X-Amz-Firehose-Common-Attributes": '{"commonAttributes": null}'}).tenant is None


# --- request errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"records"',
        b"{}",
        b'{"records": null}',
        b'{"records": {"data": "YQ=="}}',
        b'{"records": [1]}',
        b'{"records": [{}]}',
        b'{"records": [{"data": 1}]}',
        b'{"records": [{"data": "YQ=="}, {"data": null}]}',
        b'{"records": [{"data": "\xff"}]}',  # not UTF-8
    ],
)
def test_malformed_bodies_are_request_errors(body: bytes) -> None:
    with pytest.raises(FirehoseError) as e:
        parse(body, {"X-Amz-Firehose-Request-Id": HEADER_ID})
    assert e.value.request_id == HEADER_ID


def test_request_error_carries_the_body_request_id() -> None:
    with pytest.raises(FirehoseError) as e:
        parse(b'{"requestId": "rid", "records": 3}')
    assert e.value.request_id == "rid"


def test_bad_content_encoding() -> None:
    with pytest.raises(FirehoseError):
        parse(fixture("direct-put.json"), {"Content-Encoding": "gzip"})  # says gzip, is not
    with pytest.raises(FirehoseError):
        parse(gzip.compress(fixture("direct-put.json"))[:-10], {"Content-Encoding": "gzip"})  # truncated
    with pytest.raises(FirehoseError):
        parse(fixture("direct-put.json"), {"Content-Encoding": "br"})
    assert parse(fixture("direct-put.json"), {"Content-Encoding": "identity"}).entries == 3
    assert parse(gzip.compress(fixture("direct-put.json")), {"content-encoding": " GZIP "}).entries == 3


def test_gzip_bomb_body_overflows() -> None:
    bomb = gzip.compress(b" " * (MAX + 1))
    assert len(bomb) < MAX // 100
    with pytest.raises(FirehoseTooLarge) as e:
        parse(bomb, {"Content-Encoding": "gzip", "X-Amz-Firehose-Request-Id": HEADER_ID})
    assert isinstance(e.value, OverflowError) and e.value.request_id == HEADER_ID


def test_body_at_the_limit() -> None:
    body = fixture("direct-put.json")
    assert parse(body, max_size=len(body)).entries == 3
    assert parse(gzip.compress(body), {"Content-Encoding": "gzip"}, max_size=len(body)).entries == 3
    with pytest.raises(FirehoseTooLarge):
        parse(body, max_size=len(body) - 1)
    with pytest.raises(FirehoseTooLarge):
        parse(gzip.compress(body), {"Content-Encoding": "gzip"}, max_size=len(body) - 1)


# --- helpers ------------------------------------------------------------------------------------


def test_check_access_key() -> None:
    assert check_access_key(None, None) and check_access_key("", "anything")
    assert check_access_key("k3y", "k3y")
    assert not check_access_key("k3y", "bad") and not check_access_key("k3y", None) and not check_access_key("k3y", "")
    assert check_access_key("clé", "clé") and not check_access_key("clé", "cle")  # non-ASCII does not raise


def test_response_body() -> None:
    import time

    before = time.time_ns() // 1_000_000
    ok = orjson.loads(response_body("rid"))
    bad = orjson.loads(response_body("", 'bad "body"\n'))
    after = time.time_ns() // 1_000_000
    assert set(ok) == {"requestId", "timestamp"} and ok["requestId"] == "rid"
    assert before <= ok["timestamp"] <= after  # milliseconds, as AWS specifies
    assert bad["requestId"] == "" and bad["errorMessage"] == 'bad "body"\n' and before <= bad["timestamp"] <= after


# --- fuzz ---------------------------------------------------------------------------------------


def _parse_or_reject(body: bytes, headers: dict[str, str], **kw: Any) -> FirehoseBatch | None:
    try:
        return parse_request(body, headers, receive_ns=RECEIVE_NS, max_size=4096, **kw)
    except (FirehoseError, FirehoseTooLarge):
        return None


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=2048), gz=st.booleans(), incoming=st.booleans(), split=st.booleans())
def test_fuzz_arbitrary_bytes(body: bytes, gz: bool, incoming: bool, split: bool) -> None:
    for data, headers in ((body, {}), (gzip.compress(body) if gz else body, {"Content-Encoding": "gzip"})):
        _parse_or_reject(data, headers, use_incoming_timestamp=incoming, split_lines=split)


@settings(max_examples=300, deadline=None)
@given(
    payloads=st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.binary(max_size=200).map(gzip.compress),
            st.builds(lambda b: b"\x1f\x8b" + b, st.binary(max_size=50)),
            st.builds(
                cw_payload,
                st.sampled_from(["DATA_MESSAGE", "CONTROL_MESSAGE", ""]),
                st.text(max_size=5),
                st.text(max_size=5),
            ),
        ),
        max_size=8,
    ),
    junk=st.lists(st.text(max_size=12), max_size=3),
    attrs=st.text(max_size=60),
    incoming=st.booleans(),
    split=st.booleans(),
)
def test_fuzz_well_formed_bodies_never_fail(
    payloads: list[bytes], junk: list[str], attrs: str, incoming: bool, split: bool
) -> None:
    records = [{"data": base64.b64encode(p).decode()} for p in payloads] + [{"data": j} for j in junk]
    body = orjson.dumps({"requestId": "r", "timestamp": 5, "records": records})
    headers = {"X-Amz-Firehose-Common-Attributes": attrs}
    b = parse_request(
        body, headers, receive_ns=RECEIVE_NS, use_incoming_timestamp=incoming, split_lines=split, max_size=1 << 16
    )
    assert b.records == len(records)
    assert sum(len(s.entries.entries) for s in b.streams) == b.entries
    for s in b.streams:
        s.entries.SerializeToString()  # every line is valid UTF-8 for protobuf
    ingested = len(records) - b.control_messages - sum(b.skipped.values())
    assert ingested >= 0 and (ingested > 0) == (b.entries > 0) == bool(b.streams)


def test_the_retry_digest_tells_records_apart_and_ignores_the_body_timestamp() -> None:
    def digest(*data: bytes | str, attributes: str = "", timestamp: int = 1) -> str:
        records = [{"data": d if isinstance(d, str) else base64.b64encode(d).decode()} for d in data]
        headers = {"X-Amz-Firehose-Common-Attributes": attributes} if attributes else {}
        body = orjson.dumps({"requestId": "r", "timestamp": timestamp, "records": records})
        return parse(body, headers).digest

    same = digest(b"ab", b"c")
    assert same == digest(b"ab", b"c", timestamp=99)  # Firehose may stamp a retry anew
    others = [
        digest(b"ab", b"d"), digest(b"a", b"bc"), digest(b"abc"), digest(b"c", b"ab"), digest(b"ab", b"c", b""),
        digest(b"ab", b"c", attributes='{"commonAttributes": {"lbl_a": "1"}}'),
        digest("YWI=", "Yw"),  # the second record is no base64 ("Yw" unpadded): hashed as text, not as b"c"
    ]
    assert len({same, *others}) == len(others) + 1
