"""Coverage-guided fuzzing of every input decoder with atheris (libFuzzer for Python).

    pip install atheris
    python fuzz/fuzz_decoders.py TARGET [libFuzzer flags, e.g. -max_total_time=60 corpus_dir]

TARGET is one of: push_json, push_protobuf, content (gzip/deflate/snappy), lambda, firehose, s3.
A decoder may refuse its input only with the errors the HTTP layer turns into 4xx answers;
any other exception, a crash or a hang is a finding. The hypothesis tests in
tests/test_hostile.py check the same properties in CI; this is the longer, guided run.
"""

from __future__ import annotations

import gzip
import io
import sys
import tempfile
import time
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import orjson

    from relay.model import LabelError
    from relay.aws import events as lambda_events
    from relay.aws import firehose, s3logs
    from relay.sources.content import BadRequest, BodyTooLarge, decode_content, snappy_block
    from relay.sources.push import PushDecoder

LIMIT = 1 << 20
NOW = time.time_ns()
decoder = PushDecoder()


def push_json(data: bytes) -> None:
    try:
        decoder.json(data)
    except BadRequest:
        pass


def push_protobuf(data: bytes) -> None:
    try:
        decoder.protobuf(data, LIMIT)
    except (BadRequest, BodyTooLarge):
        pass


def content(data: bytes) -> None:
    if not data:
        return
    encoding = ("gzip", "deflate", "snappy", "br")[data[0] % 4]
    try:
        body = decode_content(data[1:], encoding, LIMIT)
        if encoding == "snappy":
            snappy_block(body, LIMIT)
    except (BadRequest, BodyTooLarge):
        pass


def lambda_event(data: bytes) -> None:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    try:
        lambda_events.parse_event(doc, keep_stream=True, receive_ns=NOW, limit=LIMIT)
    except (lambda_events.EventError, LabelError):
        pass


def firehose_request(data: bytes) -> None:
    try:
        firehose.parse_request(data, {"content-encoding": "gzip" if data[:2] == b"\x1f\x8b" else ""},
                               receive_ns=NOW, use_incoming_timestamp=True, max_size=LIMIT)
    except (firehose.FirehoseError, firehose.FirehoseTooLarge):
        pass


def s3(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    key = fdp.ConsumeUnicodeNoSurrogates(200)
    obj = s3logs.classify("bucket", key)
    try:
        for _ in s3logs.read_entries(obj, io.BytesIO(fdp.ConsumeBytes(1 << 16)), NOW, max_bytes=LIMIT):
            pass
    except s3logs.S3LogError:
        pass


PAYLOADS = Path(__file__).resolve().parents[1] / "tests" / "payloads"


def seeds(target: str) -> list[bytes]:
    """The project's own sample payloads to start from (tests/payloads)."""
    if target == "lambda":
        return [p.read_bytes() for p in sorted((PAYLOADS / "events").glob("*.json"))]
    if target == "firehose":
        return [p.read_bytes() for p in sorted((PAYLOADS / "firehose").glob("*.json"))]
    if target == "s3":
        return [b"AWSLogs/1/elasticloadbalancing/r/2022/01/24/1_elasticloadbalancing_r_app.lb.1_2022_0.log.gz\x00"
                + gzip.decompress((PAYLOADS / "s3" / "alb.log.gz").read_bytes()),
                (PAYLOADS / "s3" / "s3access.log").read_bytes()]
    if target == "push_json":
        return [b'{"streams":[{"stream":{"job":"a"},"values":[["1700000000000000000","x",{"k":"v"}]]}]}']
    return []


TARGETS = {"push_json": push_json, "push_protobuf": push_protobuf, "content": content,
           "lambda": lambda_event, "firehose": firehose_request, "s3": s3}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer flags]")
    target = TARGETS[sys.argv[1]]
    args = sys.argv[2:]
    if not any(not a.startswith("-") for a in args):  # no corpus directory given: start from our payloads
        corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{sys.argv[1]}-"))
        for i, seed in enumerate(seeds(sys.argv[1])):
            (corpus / f"seed{i}").write_bytes(seed)
        args.append(str(corpus))
    atheris.Setup([sys.argv[0], *args], target)
    atheris.Fuzz()
