"""Tests for the Loki stand-in (tests/loki_receiver.py) itself."""

import gzip
import http.client
import threading
import time
import zlib

import httpx
import orjson
import pytest
import snappy

from tests.loki_receiver import Receiver, build_push_request, encode_push

PROTO = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def rx():
    r = Receiver.start()
    yield r
    r.stop()


@pytest.fixture
def loki(rx):
    rx.reset()
    with httpx.Client(timeout=10.0) as client:
        yield rx, client
    rx.reset()


def now():
    return time.time_ns()


def json_body(streams):
    return orjson.dumps({"streams": streams})


# ---------------------------------------------------------------- accepted


def test_valid_proto_with_structured_metadata(loki):
    rx, c = loki
    t = now()
    body = encode_push(
        [
            ('{job="app", host="h1"}', [(t, "line one", {"trace_id": "abc"}), (t + 1, "line two ü")]),
            ('{job="other"}', [(t + 2, "x")]),
        ]
    )
    r = c.post(
        rx.url,
        content=body,
        headers={**PROTO, "X-Scope-OrgID": "team-a", "Authorization": "Basic dTpw", "User-Agent": "relay-test/1"},
    )
    assert r.status_code == 204, r.text
    es = rx.entries()
    assert [e["line"] for e in es] == ["line one", "line two ü", "x"]
    e0 = es[0]
    assert e0["tenant"] == "team-a"
    assert e0["labels"] == {"host": "h1", "job": "app"}
    assert e0["labels_raw"] == '{job="app", host="h1"}'
    assert e0["ts"] == t
    assert e0["metadata"] == {"trace_id": "abc"}
    assert es[1]["metadata"] == {}
    reqs = rx.requests()
    assert len(reqs) == 1
    h = reqs[0]["headers"]
    assert h["authorization"] == "Basic dTpw"
    assert h["user-agent"] == "relay-test/1"
    assert h["x-scope-orgid"] == "team-a"
    assert h["content-type"] == "application/x-protobuf"
    assert h["content-encoding"] is None
    assert reqs[0]["status"] == 204 and reqs[0]["accepted"] == 3
    s = rx.stats()
    assert s["requests"] == 1 and s["entries"] == 3 and s["rejected"] == 0
    assert s["by_tenant"]["team-a"]["entries"] == 3


def test_valid_json_with_structured_metadata(loki):
    rx, c = loki
    t = now()
    body = json_body(
        [
            {"stream": {"job": "j", "env": "prod"}, "values": [[str(t), "hello", {"user": "bob", "n": "1"}], [str(t + 5), "plain"]]},
        ]
    )
    r = c.post(rx.url, content=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 204, r.text
    es = rx.entries()
    assert len(es) == 2
    assert es[0]["tenant"] == ""
    assert es[0]["labels"] == {"env": "prod", "job": "j"}
    assert es[0]["labels_raw"] == '{env="prod", job="j"}'
    assert es[0]["metadata"] == {"user": "bob", "n": "1"}
    assert es[0]["ts"] == t and es[1]["ts"] == t + 5
    assert es[1]["line"] == "plain"


def test_label_text_forms_loki_accepts(loki):
    rx, c = loki
    t = now()
    body = encode_push(
        [
            ("{a='single', b=`raw\\n`, c=\"esc\\t\\u00e9\\x41\",}", [(t, "1")]),  # quotes, raw string, escapes, trailing comma
            ('{ x = "1" , empty = "" }', [(t, "2")]),  # whitespace; empty value is dropped
            ('metric_name{a="b"}', [(t, "3")]),  # metric name -> __name__
        ]
    )
    r = c.post(rx.url, content=body, headers=PROTO)
    assert r.status_code == 204, r.text
    es = rx.entries()
    assert es[0]["labels"] == {"a": "single", "b": "raw\\n", "c": "esc\té" + "A"}
    assert es[1]["labels"] == {"x": "1"}
    assert es[2]["labels"] == {"__name__": "metric_name", "a": "b"}


def test_gzip_and_deflate_encodings(loki):
    rx, c = loki
    t = now()
    js = json_body([{"stream": {"a": "gz"}, "values": [[str(t), "json-gzip"]]}])
    r = c.post(rx.url, content=gzip.compress(js), headers={**JSON, "Content-Encoding": "gzip"})
    assert r.status_code == 204, r.text
    pb = encode_push([('{a="gz"}', [(t, "proto-gzip")])])
    r = c.post(rx.url, content=gzip.compress(pb), headers={**PROTO, "Content-Encoding": "gzip"})
    assert r.status_code == 204, r.text
    # deflate = Go compress/flate: raw DEFLATE stream without zlib header
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = co.compress(js.replace(b"json-gzip", b"json-deflate")) + co.flush()
    r = c.post(rx.url, content=raw, headers={**JSON, "Content-Encoding": "deflate"})
    assert r.status_code == 204, r.text
    # "snappy" content-encoding is accepted and ignored (body is the usual snappy proto)
    r = c.post(rx.url, content=encode_push([('{a="gz"}', [(t, "snappy-enc")])]), headers={**PROTO, "Content-Encoding": "snappy"})
    assert r.status_code == 204, r.text
    assert rx.lines() == ["json-gzip", "proto-gzip", "json-deflate", "snappy-enc"]
    # zlib-wrapped deflate (RFC 1950) is not what Loki's flate reader expects
    r = c.post(rx.url, content=zlib.compress(js), headers={**JSON, "Content-Encoding": "deflate"})
    assert r.status_code == 400
    r = c.post(rx.url, content=js, headers={**JSON, "Content-Encoding": "br"})
    assert r.status_code == 400 and 'Content-Encoding "br" not supported' in r.text
    r = c.post(rx.url, content=b"not gzip", headers={**JSON, "Content-Encoding": "gzip"})
    assert r.status_code == 400


def test_any_non_json_content_type_means_snappy_proto(loki):
    rx, c = loki
    body = encode_push([('{a="b"}', [(now(), "x")])])
    r = c.post(rx.url, content=body, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204


def test_stream_without_entries_is_ignored_and_empty_request_is_422(loki):
    rx, c = loki
    r = c.post(rx.url, content=encode_push([('{a="b"}', [])]), headers=PROTO)
    assert r.status_code == 204
    r = c.post(rx.url, content=encode_push([]), headers=PROTO)
    assert r.status_code == 422
    assert "at least one valid stream is required" in r.text
    r = c.post(rx.url, content=json_body([]), headers=JSON)
    assert r.status_code == 422
    assert rx.entries() == []


# ---------------------------------------------------------------- rejected


def post_proto(rx, c, labels, entries=None, **kw):
    entries = entries if entries is not None else [(now(), "line")]
    return c.post(rx.url, content=encode_push([(labels, entries)]), headers=PROTO, **kw)


@pytest.mark.parametrize(
    "labels,expected",
    [
        ("{}", "error at least one label pair is required per stream"),
        ("", "error at least one label pair is required per stream"),
        ('{a=""}', "error at least one label pair is required per stream"),
        ('{a="1", a="2"}', "has duplicate label name: 'a'"),
        ("{" + ", ".join(f'l{i}="v"' for i in range(16)) + "}", "has 16 label names; limit 15"),
        ('{a="' + "v" * 2049 + '"}', "has label value too long"),
        ("{" + "n" * 1025 + '="v"}', "has label name too long"),
    ],
)
def test_label_validation_errors(loki, labels, expected):
    rx, c = loki
    r = post_proto(rx, c, labels)
    assert r.status_code == 400
    assert expected in r.text
    assert rx.entries() == []
    assert rx.stats()["rejected"] == 1


def test_fifteen_labels_plus_service_name_is_fine(loki):
    rx, c = loki
    labels = "{" + ", ".join([f'l{i}="v"' for i in range(15)] + ['service_name="s"']) + "}"
    assert post_proto(rx, c, labels).status_code == 204
    assert post_proto(rx, c, '{a="' + "v" * 2048 + '"}').status_code == 204


@pytest.mark.parametrize(
    "labels",
    ['{a="b"', '{a-b="x"}', '{1a="b"}', "{a=b}", '{a!="b"}', '{a=~"b"}', '{a="b"} junk', '{a="\\q"}', '{a="line\nbreak"}', '{"a"="b"}'],
)
def test_unparseable_labels_fail_whole_request(loki, labels):
    rx, c = loki
    t = now()
    body = encode_push([('{ok="yes"}', [(t, "good")]), (labels, [(t, "bad")])])
    r = c.post(rx.url, content=body, headers=PROTO)
    assert r.status_code == 400
    assert r.text.startswith("couldn't parse labels: ")
    assert rx.entries() == []  # Loki rejects the request before the distributor sees it


def test_validation_errors_keep_valid_streams_and_group_messages(loki):
    rx, c = loki
    t = now()
    body = encode_push(
        [
            ('{ok="1"}', [(t, "kept 1"), (0, "too old"), (t, "kept 2")]),
            ("{}", [(t, "no labels")]),
            ('{a="1", a="2"}', [(t, "dup")]),
            ('{ok="2"}', [(t, "kept 3")]),
        ]
    )
    r = c.post(rx.url, content=body, headers=PROTO)
    assert r.status_code == 400
    assert "1 errors like: entry for stream '{ok=\"1\"}' has timestamp too old: 1970-01-01T00:00:00Z" in r.text
    assert "1 errors like: error at least one label pair is required per stream" in r.text
    assert r.text.count("; ") == 2
    assert rx.lines() == ["kept 1", "kept 2", "kept 3"]
    req = rx.requests()[0]
    assert req["status"] == 400 and req["accepted"] == 3 and "too old" in req["error"]
    assert req["discarded"] == 3 and rx.stats()["rejected_entries"] == 3


def test_same_error_twice_is_counted(loki):
    rx, c = loki
    r = post_proto(rx, c, '{a="b"}', [(0, "x"), (0, "y")])
    assert r.status_code == 400
    assert r.text.startswith("2 errors like: entry for stream '{a=\"b\"}' has timestamp too old")


def test_entry_validation(loki):
    rx, c = loki
    t = now()
    # unset timestamp = Go zero time, far too old
    r = post_proto(rx, c, '{a="b"}', [(None, "no ts")])
    assert r.status_code == 400 and "timestamp too old: 0001-01-01T00:00:00Z" in r.text
    r = post_proto(rx, c, '{a="b"}', [(t - 8 * 86400 * 10**9, "8 days old")])
    assert r.status_code == 400 and "timestamp too old" in r.text
    assert post_proto(rx, c, '{a="b"}', [(t - 6 * 86400 * 10**9, "6 days old")]).status_code == 204
    r = post_proto(rx, c, '{a="b"}', [(t + 11 * 60 * 10**9, "future")])
    assert r.status_code == 400 and "timestamp too new" in r.text
    assert post_proto(rx, c, '{a="b"}', [(t + 5 * 60 * 10**9, "near future")]).status_code == 204
    r = post_proto(rx, c, '{a="b"}', [(t, "x" * (256 * 1024 + 1))])
    assert r.status_code == 400 and "Max entry size '262144' bytes exceeded" in r.text
    assert post_proto(rx, c, '{a="b"}', [(t, "x" * (256 * 1024))]).status_code == 204
    r = post_proto(rx, c, '{a="b"}', [(t, "m", {f"k{i}": "v" for i in range(129)})])
    assert r.status_code == 400 and "too many structured metadata labels: '129', limit: '128'" in r.text
    r = post_proto(rx, c, '{a="b"}', [(t, "m", {"k": "v" * 65536})])
    assert r.status_code == 400 and "structured metadata too large: '65537' bytes" in r.text
    assert [e["line"] for e in rx.entries()] == ["6 days old", "near future", "x" * 256 * 1024]


def test_malformed_bodies(loki):
    rx, c = loki
    good_json = json_body([{"stream": {"a": "b"}, "values": [[str(now()), "x"]]}])
    cases = [
        (b"definitely not snappy", PROTO, "snappy: corrupt input"),
        (snappy.compress(b"\xff\xff\xff\xff garbage"), PROTO, "proto:"),
        (build_push_request([('{a="b"}', [(now(), "x")])]), PROTO, "snappy: corrupt input"),  # uncompressed
        (b"{not json", JSON, ""),
        (b"", JSON, ""),
        (b"[1,2]", JSON, ""),
        (json_body([{"stream": {"a": "b"}, "values": [[int(now()), "x"]]}]), JSON, ""),  # ts must be a string
        (json_body([{"stream": {"a": "b"}, "values": [["12ab", "x"]]}]), JSON, "strconv.ParseInt"),
        (json_body([{"stream": {"a": "b"}, "values": [[str(now()), {"line": "obj"}]]}]), JSON, ""),
        (json_body([{"stream": {"a": "b"}, "values": [[str(now()), "x", {}, "extra"]]}]), JSON, "array must contains 2 values"),
        (json_body([{"stream": {"a": "b"}, "values": [[str(now()), "x", {"k": 1}]]}]), JSON, ""),
        (json_body([{"stream": {"a": 1}, "values": [[str(now()), "x"]]}]), JSON, ""),
        (json_body([{"stream": {"a-b": "c"}, "values": [[str(now()), "x"]]}]), JSON, "couldn't parse labels"),
        (good_json, {}, "mime: no media type"),  # no Content-Type at all
        (good_json, {"Content-Type": ""}, "mime: no media type"),
        (good_json, {"Content-Type": "application/json; charsetutf-8"}, "mime: invalid media parameter"),
    ]
    for body, headers, expected in cases:
        r = c.post(rx.url, content=body, headers=headers)
        assert r.status_code == 400, (body[:60], headers, r.status_code, r.text)
        assert expected in r.text, (body[:60], r.text)
        assert r.text.strip(), "error responses carry a reason"
    assert rx.entries() == []
    assert rx.stats()["rejected"] == len(cases)


def test_invalid_utf8_in_proto_is_rejected(loki):
    rx, c = loki
    # hand-built PushRequest: stream{labels='{a="b"}', entry{ts, line=b"\xff"}}
    from google.protobuf import timestamp_pb2

    ts = timestamp_pb2.Timestamp(seconds=now() // 10**9).SerializeToString()
    line = b"\xffbad"
    entry = b"\x0a" + bytes([len(ts)]) + ts + b"\x12" + bytes([len(line)]) + line
    labels = b'{a="b"}'
    stream = b"\x0a" + bytes([len(labels)]) + labels + b"\x12" + bytes([len(entry)]) + entry
    req = b"\x0a" + bytes([len(stream)]) + stream
    r = c.post(rx.url, content=snappy.compress(req), headers=PROTO)
    assert r.status_code == 400 and "invalid UTF-8" in r.text
    # same bytes with a valid line decode fine (checks the hand-built encoding)
    line = b"good"
    entry = b"\x0a" + bytes([len(ts)]) + ts + b"\x12" + bytes([len(line)]) + line
    stream = b"\x0a" + bytes([len(labels)]) + labels + b"\x12" + bytes([len(entry)]) + entry
    req = b"\x0a" + bytes([len(stream)]) + stream
    assert c.post(rx.url, content=snappy.compress(req), headers=PROTO).status_code == 204


def test_tenant_header_validation(loki):
    rx, c = loki
    body = encode_push([('{a="b"}', [(now(), "x")])])
    r = c.post(rx.url, content=body, headers={**PROTO, "X-Scope-OrgID": "a|b"})
    assert r.status_code == 400 and "multiple org IDs" in r.text
    r = c.post(rx.url, content=body, headers={**PROTO, "X-Scope-OrgID": "bad tenant"})
    assert r.status_code == 400 and "unsupported character" in r.text
    r = c.post(rx.url, content=body, headers={**PROTO, "X-Scope-OrgID": "ok_tenant-1.(x)"})
    assert r.status_code == 204
    assert [e["tenant"] for e in rx.entries()] == ["ok_tenant-1.(x)"]


def test_require_tenant_and_relaxed_limits_options():
    with Receiver.start(require_tenant=True, no_reject_old_samples=True, max_line_size=10) as rx2:
        with httpx.Client() as c:
            body = encode_push([('{a="b"}', [(1_570_818_238_000_000_000, "old but too long")])])
            r = c.post(rx2.url, content=body, headers=PROTO)
            assert r.status_code == 401 and "no org id" in r.text
            r = c.post(rx2.url, content=body, headers={**PROTO, "X-Scope-OrgID": "t"})
            assert r.status_code == 400 and "Max entry size '10' bytes" in r.text
            body = encode_push([('{a="b"}', [(1_570_818_238_000_000_000, "old ok")])])
            assert c.post(rx2.url, content=body, headers={**PROTO, "X-Scope-OrgID": "t"}).status_code == 204
        assert rx2.lines() == ["old ok"]


# ---------------------------------------------------------------- plumbing


def test_keep_alive_connection_is_reused(rx):
    rx.reset()
    conn = http.client.HTTPConnection(rx.host, rx.port, timeout=5)
    try:
        socks = []
        for i in range(3):
            body = encode_push([('{a="b"}', [(now(), f"ka{i}")])])
            conn.request("POST", "/loki/api/v1/push", body=body, headers=PROTO)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 204
            socks.append(conn.sock)
        assert socks[0] is not None and socks[0] is socks[1] is socks[2]
        # a 400 keeps the connection usable too
        conn.request("POST", "/loki/api/v1/push", body=b"junk", headers=PROTO)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 400 and conn.sock is socks[0]
    finally:
        conn.close()
    assert rx.lines() == ["ka0", "ka1", "ka2"]


def test_wait_for(loki):
    rx, c = loki

    def later():
        time.sleep(0.2)
        c2 = httpx.Client()
        c2.post(rx.url, content=encode_push([('{a="b"}', [(now(), "late")])]), headers={**PROTO, "X-Scope-OrgID": "w"})
        c2.close()

    th = threading.Thread(target=later)
    th.start()
    es = rx.wait_for(1, timeout=5, tenant="w")
    th.join()
    assert [e["line"] for e in es] == ["late"]
    with pytest.raises(TimeoutError):
        rx.wait_for(2, timeout=0.2)


def test_unknown_path_and_method(loki):
    rx, c = loki
    assert c.get(rx.base_url + "/ready").status_code == 200
    assert c.get(rx.url).status_code == 405
    assert c.post(rx.base_url + "/api/v1/push", content=b"").status_code == 404


# ---------------------------------------------------------------- faults


def push_one(rx, c, line, tenant=None, **kw):
    h = dict(PROTO)
    if tenant:
        h["X-Scope-OrgID"] = tenant
    return c.post(rx.url, content=encode_push([('{a="b"}', [(now(), line)])]), headers=h, **kw)


def test_fail_count_then_success(loki):
    rx, c = loki
    rx.fail(500, count=2)
    r1 = push_one(rx, c, "1")
    r2 = push_one(rx, c, "2")
    r3 = push_one(rx, c, "3")
    assert [r1.status_code, r2.status_code, r3.status_code] == [500, 500, 204]
    assert rx.lines() == ["3"]
    s = rx.stats()
    assert s["requests"] == 3 and s["injected"] == 2 and s["rejected"] == 0


def test_fail_429_with_retry_after_and_sequenced_rules(loki):
    rx, c = loki
    rx.fail(429, count=1, retry_after=2)
    rx.fail(503, count=1, body="overloaded")
    r = push_one(rx, c, "a")
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert "Ingestion rate limit exceeded" in r.text
    r = push_one(rx, c, "b")
    assert r.status_code == 503 and r.text == "overloaded\n" and "Retry-After" not in r.headers
    assert push_one(rx, c, "c").status_code == 204
    assert rx.lines() == ["c"]


def test_fail_until_reset_and_accept_flag(loki):
    rx, c = loki
    rx.fail(500, count=None)
    assert all(push_one(rx, c, str(i)).status_code == 500 for i in range(4))
    rx.clear_faults()
    assert push_one(rx, c, "ok").status_code == 204
    # accept=True: data is stored although the client sees an error
    rx.fail(504, count=1, accept=True)
    assert push_one(rx, c, "stored-anyway").status_code == 504
    assert rx.lines() == ["ok", "stored-anyway"]


def test_tenant_scoped_failure(loki):
    rx, c = loki
    rx.fail(429, count=2, tenant="a")
    assert push_one(rx, c, "b1", tenant="b").status_code == 204
    assert push_one(rx, c, "none").status_code == 204
    assert push_one(rx, c, "a1", tenant="a").status_code == 429
    assert push_one(rx, c, "b2", tenant="b").status_code == 204
    assert push_one(rx, c, "a2", tenant="a").status_code == 429
    assert push_one(rx, c, "a3", tenant="a").status_code == 204
    assert [e["line"] for e in rx.entries(tenant="a")] == ["a3"]
    assert [e["line"] for e in rx.entries(tenant="b")] == ["b1", "b2"]
    assert [e["line"] for e in rx.entries(tenant="")] == ["none"]
    bt = rx.stats()["by_tenant"]
    assert bt["a"] == {"requests": 3, "entries": 1, "rejected": 0, "injected": 2}


def test_delay(loki):
    rx, c = loki
    rx.delay(1.0, count=1)
    t0 = time.monotonic()
    assert push_one(rx, c, "slow").status_code == 204
    assert time.monotonic() - t0 >= 0.95
    t0 = time.monotonic()
    assert push_one(rx, c, "fast").status_code == 204
    assert time.monotonic() - t0 < 0.8
    assert rx.lines() == ["slow", "fast"]
    # delay combined with a status
    rx.fail(500, count=1, delay=0.3)
    t0 = time.monotonic()
    assert push_one(rx, c, "x").status_code == 500
    assert time.monotonic() - t0 >= 0.25


def test_hang_times_out_client_without_blocking_others(loki):
    rx, c = loki
    rx.hang(count=1)
    with pytest.raises(httpx.ReadTimeout):
        push_one(rx, c, "hung", timeout=httpx.Timeout(10.0, read=0.5))
    assert rx.stats()["hanging"] == 1
    # other requests (new connections) are served while one hangs
    with httpx.Client(timeout=5) as c2:
        assert push_one(rx, c2, "after").status_code == 204
    assert rx.lines() == ["after"]


def test_hang_until_reset_then_connection_dropped(loki):
    rx, c = loki
    rx.hang(tenant="h")
    result = {}

    def blocked():
        try:
            with httpx.Client(timeout=10) as c3:
                result["r"] = push_one(rx, c3, "never", tenant="h")
        except httpx.HTTPError as e:
            result["err"] = e

    th = threading.Thread(target=blocked)
    th.start()
    deadline = time.monotonic() + 5
    while rx.stats()["hanging"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert push_one(rx, c, "other-tenant", tenant="x").status_code == 204
    rx.reset()
    th.join(5)
    assert not th.is_alive()
    assert "err" in result and "r" not in result  # released without an answer
    assert rx.stats()["hanging"] == 0
    assert push_one(rx, c, "works again", tenant="h").status_code == 204
    assert rx.lines() == ["works again"]


def test_bad_control_requests(loki):
    rx, c = loki
    for bad in [{}, {"status": "x"}, {"status": 500, "count": 0}, {"bogus": 1}, {"delay": -1}]:
        with pytest.raises(ValueError):
            rx.control(**bad)
