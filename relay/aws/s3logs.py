"""AWS service logs delivered to S3: classify an object by its key, then stream its entries.

Pure parsing, no I/O of its own (`relay.aws.s3` fetches objects); no sinks, no config.

`classify(bucket, key)` recognises the key layouts that lambda-promtail knows and gives the
same `__aws_*` label names (its `pkg/s3.go`: `__aws_log_type`, `__aws_<type>` for the
source and `__aws_<type>_owner`), plus `__aws_s3_bucket` and `__aws_s3_key` always:

    __aws_log_type   key layout (after an optional prefix)                       __aws_<type>       _owner
    s3_lb            AWSLogs/<acct>/elasticloadbalancing/<region>/Y/M/D/          load balancer name <acct>
                       [conn_log_|health_check_log_]<acct>_elasticloadbalancing_<region>_[app.|net.]<name>...
    s3_vpc_flow      AWSLogs/<acct>/vpcflowlogs/<region>/Y/M/D[/HH]/              flow log id        <acct>
                       <acct>_vpcflowlogs_<region>_<fl-id>_...  (Hive-style `year=` parts too)
    s3_cloudtrail    AWSLogs/[o-<org>/]<acct>/CloudTrail[-Insight]/<region>/Y/M/D/ last `_` part of   <acct>
                       <file>; CloudTrail-Digest keys are classified but skipped   the file name
    s3_cloudfront    [<prefix>/]<DISTRIBUTION>.<YYYY-MM-DD-HH>.<unique>[.gz]      distribution id    <prefix>
    s3_waf           AWSLogs/<acct>/WAFLogs/<region>/<web-acl>/Y/M/D/HH/MM/<acct>_waflogs_...  web ACL  <acct>
    s3_guardduty     AWSLogs/<acct>/GuardDuty/<region>/Y/M/D/<file>                (none)             <acct>
    s3_msk           AWSLogs/<acct>/KafkaBrokerLogs/<region>/<cluster-dir>/<YYYY-MM-DD-HH>/<file>  cluster dir <acct>
    s3_access        <acct>/<region>/<source-bucket>/Y/M/D/<YYYY-MM-DD-hh-mm-ss>-<unique>  source bucket  <acct>
                       or the simple layout <YYYY-MM-DD-hh-mm-ss>-<16 hex> (no source, no owner)
    s3               anything else: every line is ingested with the receive time

A label whose value would be empty is left out. When several layouts could match, the
order above decides (lambda-promtail iterates a Go map, so its choice is random).

Where this differs from lambda-promtail (on purpose):

- keys it rejects are recognised: hourly-partitioned VPC flow logs, ALB connection logs
  (`conn_log_`) and health-check logs (`health_check_log_`), CloudTrail files without the
  numeric account prefix, CloudFront logs at the bucket root, buckets with dots in S3
  access-log keys; an unknown key is ingested as type `s3` instead of failing the event;
- a line whose timestamp cannot be parsed gets the receive time and is counted
  (`S3Stats.ts_fallback`) instead of failing the whole object;
- VPC flow records use their `start` field (lambda-promtail looks for an ISO time that
  flow logs do not have, so it always used the receive time); the header line tells
  which column is `start`, so custom formats work;
- GuardDuty findings use `updatedAt` (lambda-promtail looks for `eventTime`, which
  findings do not have) and stay as delivered, one JSON line each;
- CloudTrail records are re-encoded as compact JSON keeping their key order (Go's
  encoder sorted the keys);
- lines have no length limit (bufio.Scanner stopped at 64 KiB); only `max_bytes`
  bounds memory. Blank lines are dropped and CR LF endings are trimmed.

Timestamps per type: ALB/NLB/classic ELB the first ISO-8601 time in the line (no zone
means UTC); CloudFront the leading date and time (UTC); WAF `"timestamp"` in unix ms;
MSK the log4j `[YYYY-MM-DD HH:MM:SS,mmm]` prefix (UTC); S3 access `[dd/Mon/yyyy:HH:MM:SS
+zzzz]`; CloudTrail `eventTime`; GuardDuty `updatedAt`; VPC flow `start` (unix seconds).
Header lines are skipped as lambda-promtail does: the VPC flow field-name line (the first
line, when it has no digit) and CloudFront's `#Version`/`#Fields` (any line starting `#`).
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson

from ..compress import GZIP_MAGIC
from ..model import Labels
from ..times import (
    ISO,
    MONTHS,
    NS,
    ReceiveClock,
    clock_seconds,
    days_since_epoch,
    iso_match_ns,
    iso_ns,
    receive_clock,
    unix_digits_ns,
)

# Values of __aws_log_type.
LB = "s3_lb"
VPC_FLOW = "s3_vpc_flow"
CLOUDTRAIL = "s3_cloudtrail"
CLOUDFRONT = "s3_cloudfront"
WAF = "s3_waf"
GUARDDUTY = "s3_guardduty"
MSK = "s3_msk"
S3_ACCESS = "s3_access"
UNKNOWN = "s3"
LOG_TYPES = (LB, VPC_FLOW, CLOUDTRAIL, CLOUDFRONT, WAF, GUARDDUTY, MSK, S3_ACCESS, UNKNOWN)

DEFAULT_MAX_BYTES = 256 << 20  # the most held in memory at once: a CloudTrail document, or one line
DEFAULT_CHUNK_LINES = 1000
DEFAULT_CHUNK_BYTES = 4 << 20

_BLOCK = 1 << 20  # bytes read from the (decompressed) stream at a time


class S3LogError(ValueError):
    """The object cannot be read: corrupt gzip, a CloudTrail file that is not JSON..."""


class ObjectTooLarge(S3LogError):
    """A CloudTrail document, or a single line, exceeds `max_bytes` once decompressed."""


@dataclass(slots=True, frozen=True)
class S3Object:
    """What `classify` learnt from a key: the log type and the stream labels."""

    bucket: str
    key: str
    log_type: str  # one of LOG_TYPES
    labels: Labels  # __aws_log_type, __aws_s3_bucket, __aws_s3_key, __aws_<type>[_owner]
    skip: bool = False  # CloudTrail digest files: not logs, read_entries yields nothing


@dataclass(slots=True)
class S3Stats:
    """Counters that `read_entries` updates as it goes."""

    entries: int = 0  # entries yielded
    bytes: int = 0  # decompressed bytes read
    ts_fallback: int = 0  # entries given the receive time because their timestamp did not parse
    skipped: int = 0  # header and blank lines dropped


# --- classification ---------------------------------------------------------------------

_REGION_IN_NAME = r"[a-z]{2}(?:-[a-z]+)+-\d+"  # us-east-1, us-gov-east-1, ap-southeast-2
_DATE_DIRS = r"\d{4}/\d{2}/\d{2}/"

_LB_KEY = re.compile(
    r"(?:^|/)AWSLogs/(?P<owner>\d+)/elasticloadbalancing/[\w-]+/" + _DATE_DIRS
    + r"(?:conn_log_|health_check_log_)?\d+_elasticloadbalancing_" + _REGION_IN_NAME
    + r"_(?:(?:app|net)\.)?(?P<src>[a-zA-Z0-9-]+)"
)
_VPC_KEY = re.compile(
    r"(?:^|/)AWSLogs/(?:aws-account-id=)?(?P<owner>\d+)/(?:aws-service=)?vpcflowlogs/(?:aws-region=)?[\w-]+/"
    r"(?:year=)?\d{4}/(?:month=)?\d{2}/(?:day=)?\d{2}/(?:(?:hour=)?\d{2}/)?"
    r"\d+_vpcflowlogs_" + _REGION_IN_NAME + r"_(?P<src>[a-zA-Z0-9-]+)"
)
_CLOUDTRAIL_KEY = re.compile(
    r"(?:^|/)AWSLogs/(?:o-[a-z0-9]{10,32}/)?(?P<owner>\d+)/(?P<kind>CloudTrail(?:-Digest|-Insight)?)/[\w-]+/"
    + _DATE_DIRS + r"(?P<file>[^/]+)$"
)
_WAF_KEY = re.compile(
    r"(?:^|/)AWSLogs/(?P<owner>\d+)/WAFLogs/[\w-]+/(?P<src>[\w-]+)/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}/\d+_waflogs_"
)
_GUARDDUTY_KEY = re.compile(r"(?:^|/)AWSLogs/(?P<owner>\d+)/GuardDuty/[\w-]+/" + _DATE_DIRS + r"[^/]+$")
_MSK_KEY = re.compile(
    r"(?:^|/)AWSLogs/(?P<owner>\d+)/KafkaBrokerLogs/[\w-]+/(?P<src>[^/]+)/\d{4}-\d{2}-\d{2}-\d{2}/[^/]+$"
)
_S3_ACCESS_KEY = re.compile(
    r"(?<!\d)(?P<owner>\d{12})/" + _REGION_IN_NAME + r"/(?P<src>[a-z0-9][a-z0-9.-]*)/" + _DATE_DIRS
    + r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9A-Za-z]+$"
)
_S3_ACCESS_SIMPLE_KEY = re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9A-F]{16}$")
_CLOUDFRONT_KEY = re.compile(r"^(?:(?P<owner>.*)/)?(?P<src>[A-Z0-9]+)\.\d{4}-\d{2}-\d{2}-\d{2}\.[^/]+$")

# Tried in this order; the first match wins.
_KEY_LAYOUTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (LB, _LB_KEY),
    (VPC_FLOW, _VPC_KEY),
    (WAF, _WAF_KEY),
    (GUARDDUTY, _GUARDDUTY_KEY),
    (MSK, _MSK_KEY),
    (S3_ACCESS, _S3_ACCESS_KEY),
    (S3_ACCESS, _S3_ACCESS_SIMPLE_KEY),
    (CLOUDFRONT, _CLOUDFRONT_KEY),
)


def _labels(log_type: str, bucket: str, key: str, src: str | None, owner: str | None) -> Labels:
    labels = {"__aws_log_type": log_type, "__aws_s3_bucket": bucket, "__aws_s3_key": key}
    if src:
        labels[f"__aws_{log_type}"] = src
    if owner:
        labels[f"__aws_{log_type}_owner"] = owner
    return labels


def classify(bucket: str, key: str) -> S3Object:
    """Recognise the log type from an (already URL-decoded) key. Never raises: unknown is type `s3`."""
    m = _CLOUDTRAIL_KEY.search(key)
    if m is not None:
        # lambda-promtail's source is the file name's last `_` part (the unique string)
        parts = m.group("file").split(".", 1)[0].split("_")
        src = parts[-1] if len(parts) >= 5 else None
        labels = _labels(CLOUDTRAIL, bucket, key, src, m.group("owner"))
        return S3Object(bucket, key, CLOUDTRAIL, labels, skip=m.group("kind") == "CloudTrail-Digest")
    for log_type, rx in _KEY_LAYOUTS:
        m = rx.search(key)
        if m is not None:
            found = m.groupdict()
            labels = _labels(log_type, bucket, key, found.get("src"), found.get("owner"))
            return S3Object(bucket, key, log_type, labels)
    return S3Object(bucket, key, UNKNOWN, _labels(UNKNOWN, bucket, key, None, None))


# --- streams ----------------------------------------------------------------------------


class _Prepend(io.RawIOBase):
    """A raw stream that returns `head` first, then the rest of `src`."""

    def __init__(self, head: bytes, src: Any) -> None:
        self._head = head
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._src.read(len(b))
        if not data:
            return 0
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        try:
            close = getattr(self._src, "close", None)
            if close is not None:
                close()
        finally:
            super().close()


def decompressed(body: Any) -> BinaryIO:
    """Wrap a binary stream (a file, boto3's StreamingBody...), gunzipping it if it starts with 1f 8b.

    Streaming: only the first two bytes are read here. Concatenated gzip members are read through.
    """
    head = b""
    while len(head) < 2:
        more = body.read(2 - len(head))
        if not more:
            break
        head += more
    buffered = io.BufferedReader(_Prepend(head, body), buffer_size=1 << 16)
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered


def _read(stream: BinaryIO, n: int) -> bytes:
    try:
        return stream.read(n)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:  # network errors pass through as they are
        raise S3LogError(f"cannot decompress: {e}") from None


def _blocks_of_lines(stream: BinaryIO, stats: S3Stats, max_bytes: int) -> Iterator[list[str]]:
    """Complete lines, block by block: split on LF, CR LF trimmed, a missing final newline tolerated."""
    pending: list[bytes] = []  # a line's start, still waiting for its newline
    pending_len = 0
    block = min(_BLOCK, max_bytes)  # so a line within one block is never over max_bytes
    while True:
        buf = _read(stream, block)
        if not buf:
            break
        stats.bytes += len(buf)
        nl = buf.rfind(b"\n")
        if nl < 0:
            pending.append(buf)
            pending_len += len(buf)
            if pending_len > max_bytes:
                raise ObjectTooLarge(f"a line is longer than {max_bytes} bytes")
            continue
        if pending:
            if pending_len + buf.find(b"\n") > max_bytes:
                raise ObjectTooLarge(f"a line is longer than {max_bytes} bytes")
            pending.append(buf[: nl + 1])
            data = b"".join(pending)
        else:
            data = buf[: nl + 1] if nl + 1 < len(buf) else buf
        rest = buf[nl + 1 :]
        pending = [rest] if rest else []
        pending_len = len(rest)
        text = data.decode("utf-8", "replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        lines.pop()  # text ends with "\n": the last item is ""
        yield lines
    if pending:
        text = b"".join(pending).decode("utf-8", "replace")
        if text.endswith("\r"):
            text = text[:-1]
        yield [text]


# --- per-type line parsers ---------------------------------------------------------------
# Each turns a block of lines into entries; returns how many fell back to the receive time.

Entries = list[tuple[int, str]]


class _State:
    __slots__ = ("first", "vpc_start")

    def __init__(self) -> None:
        self.first = True  # the next line is the object's first
        self.vpc_start = 10  # index of the `start` field in a default (version 2) flow record


def _lines_search_iso(lines: list[str], out: Entries, clock: ReceiveClock, st: _State) -> int:
    search, conv, append = ISO.search, iso_match_ns, out.append
    fallback = 0
    for line in lines:
        m = search(line)
        ts = conv(m) if m is not None else None
        if ts is None:
            ts = clock.take()
            fallback += 1
        append((ts, line))
    return fallback


_VPC_HEADER_DIGIT = re.compile(r"\d")


def _lines_vpc(lines: list[str], out: Entries, clock: ReceiveClock, st: _State) -> int:
    if st.first and lines and _VPC_HEADER_DIGIT.search(lines[0]) is None:
        names = lines[0].split()
        st.vpc_start = names.index("start") if "start" in names else -1
        lines = lines[1:]
    idx = st.vpc_start
    append = out.append
    fallback = 0
    if idx < 0:
        start = clock.take(len(lines))
        out.extend(zip(range(start, start + len(lines)), lines, strict=True))
        return len(lines)
    for line in lines:
        try:
            ts = int(line.split(" ", idx + 1)[idx]) * NS
        except (ValueError, IndexError):
            ts = clock.take()
            fallback += 1
        append((ts, line))
    return fallback


_CLOUDFRONT_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[\t ](\d{2}):(\d{2}):(\d{2})")


def _lines_cloudfront(lines: list[str], out: Entries, clock: ReceiveClock, st: _State) -> int:
    match, append = _CLOUDFRONT_TIME.match, out.append
    fallback = 0
    for line in lines:
        if line[0] == "#":  # #Version, #Fields
            continue
        m = match(line)
        ts = None
        if m is not None:
            y, mo, d, hh, mm, ss = m.groups()
            secs = clock_seconds(days_since_epoch(line[:10], int(y), int(mo), int(d)), hh, mm, ss)
            ts = secs * NS if secs is not None else None
        if ts is None:
            ts = clock.take()
            fallback += 1
        append((ts, line))
    return fallback


_WAF_TIME = re.compile(r'"timestamp":\s*(\d+)')


def _lines_waf(lines: list[str], out: Entries, clock: ReceiveClock, st: _State) -> int:
    search, append = _WAF_TIME.search, out.append
    fallback = 0
    for line in lines:
        m = search(line)
        if m is not None:
            append((unix_digits_ns(m.group(1)), line))
        else:
            append((clock.take(), line))
            fallback += 1
    return fallback


_MSK_TIME = re.compile(r"\[(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}),(\d{3})\]")


def _lines_msk(lines: list[str], out: Entries, clock: ReceiveClock, st: _State) -> int:
    match, append = _MSK_TIME.match, out.append
    fallback = 0
    for line in lines:
        m = match(line)
        ts = None
        if m is not None:
            y, mo, d, hh, mm, ss, ms = m.groups()
            secs = clock_seconds(days_since_epoch(line[1:11], int(y), int(mo), int(d)), hh, mm, ss)
            ts = secs * NS + int(ms) * 1_000_000 if secs is not None else None
        if ts is None:
            ts = clock.take()
            fallback += 1
        append((ts, line))
    return fallback


# [06/Feb/2019:00:00:38 +0000]
_S3_ACCESS_TIME = re.compile(r"\[(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\]")


def _lines_s3_access(lines: list[str], out: Entries, clock: ReceiveClock, st: _State) -> int:
    search, append = _S3_ACCESS_TIME.search, out.append
    fallback = 0
    for line in lines:
        m = search(line)
        ts = None
        if m is not None:
            d, mon, y, hh, mm, ss, sign, oh, om = m.groups()
            month = MONTHS.get(mon)
            if month is not None:
                secs = clock_seconds(days_since_epoch((d, mon, y), int(y), month, int(d)), hh, mm, ss)
                if secs is not None:
                    offset = int(oh) * 3600 + int(om) * 60
                    ts = (secs - offset if sign == "+" else secs + offset) * NS
        if ts is None:
            ts = clock.take()
            fallback += 1
        append((ts, line))
    return fallback


def _lines_guardduty(lines: list[str], out: Entries, clock: ReceiveClock, st: _State) -> int:
    loads, append = orjson.loads, out.append
    fallback = 0
    for line in lines:
        ts = None
        try:
            doc = loads(line)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):
            ts = iso_ns(doc.get("updatedAt"))
        if ts is None:
            ts = clock.take()
            fallback += 1
        append((ts, line))
    return fallback


def _lines_unknown(lines: list[str], out: Entries, clock: ReceiveClock, st: _State) -> int:
    start = clock.take(len(lines))  # 1 ns apart: Loki would merge equal lines of equal times
    out.extend(zip(range(start, start + len(lines)), lines, strict=True))
    return 0  # expected, not a parse failure: the caller counts unknown objects


_LINE_PARSERS: dict[str, Callable[[list[str], Entries, ReceiveClock, _State], int]] = {
    LB: _lines_search_iso,
    VPC_FLOW: _lines_vpc,
    CLOUDFRONT: _lines_cloudfront,
    WAF: _lines_waf,
    GUARDDUTY: _lines_guardduty,
    MSK: _lines_msk,
    S3_ACCESS: _lines_s3_access,
    UNKNOWN: _lines_unknown,
}


# --- reading ----------------------------------------------------------------------------


def read_entries(
    obj: S3Object,
    body: Any,
    receive_ns: int | ReceiveClock,
    *,
    chunk_lines: int = DEFAULT_CHUNK_LINES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    stats: S3Stats | None = None,
) -> Iterator[list[tuple[int, str]]]:
    """Yield the object's entries as lists of (unix ns, line), streaming.

    `body` is a binary stream, raw or already decompressed (gzip is detected by its
    magic bytes). A chunk holds at most `chunk_lines` entries and, roughly, `chunk_bytes`
    of text. Only CloudTrail documents are read whole; they, and any single line, may not
    exceed `max_bytes` (ObjectTooLarge). Corrupt data raises S3LogError mid-iteration.
    `stats`, when given, is updated as entries are yielded.
    """
    if stats is None:
        stats = S3Stats()
    if obj.skip:
        return
    clock = receive_clock(receive_ns)
    stream = decompressed(body)
    if obj.log_type == CLOUDTRAIL:
        yield from _read_cloudtrail(stream, clock, chunk_lines, max_bytes, stats)
        return
    parse = _LINE_PARSERS.get(obj.log_type, _lines_unknown)
    st = _State()
    chunk: Entries = []
    chunk_size = 0
    for block in _blocks_of_lines(stream, stats, max_bytes):
        n = len(block)
        lines = [line for line in block if line] if "" in block else block
        if not lines:
            stats.skipped += n
            continue
        size = sum(map(len, lines))
        before = len(chunk)
        stats.ts_fallback += parse(lines, chunk, clock, st)
        st.first = False
        added = len(chunk) - before
        stats.skipped += n - added
        chunk_size += size
        if len(chunk) >= chunk_lines:
            total = len(chunk)
            full = total - total % chunk_lines
            for i in range(0, full, chunk_lines):
                stats.entries += chunk_lines
                yield chunk[i : i + chunk_lines]
            chunk = chunk[full:]
            chunk_size = chunk_size * len(chunk) // total
        if chunk and chunk_size >= chunk_bytes:
            stats.entries += len(chunk)
            yield chunk
            chunk, chunk_size = [], 0
    if chunk:
        stats.entries += len(chunk)
        yield chunk


def _read_cloudtrail(
    stream: BinaryIO, clock: ReceiveClock, chunk_lines: int, max_bytes: int, stats: S3Stats
) -> Iterator[Entries]:
    parts: list[bytes] = []
    size = 0
    while True:
        buf = _read(stream, min(_BLOCK, max_bytes + 1 - size))
        if not buf:
            break
        parts.append(buf)
        size += len(buf)
        if size > max_bytes:
            raise ObjectTooLarge(f"CloudTrail object is larger than {max_bytes} bytes decompressed")
    stats.bytes += size
    try:
        doc = orjson.loads(b"".join(parts))
    except orjson.JSONDecodeError as e:
        raise S3LogError(f"CloudTrail object is not JSON: {e}") from None
    del parts
    records = doc.get("Records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        raise S3LogError('CloudTrail object has no "Records" list')
    dumps = orjson.dumps
    chunk: Entries = []
    for rec in records:
        ts = iso_ns(rec.get("eventTime")) if isinstance(rec, dict) else None
        if ts is None:
            ts = clock.take()
            stats.ts_fallback += 1
        chunk.append((ts, dumps(rec).decode()))
        if len(chunk) >= chunk_lines:
            stats.entries += len(chunk)
            yield chunk
            chunk = []
    if chunk:
        stats.entries += len(chunk)
        yield chunk


__all__ = [
    "CLOUDFRONT",
    "CLOUDTRAIL",
    "DEFAULT_MAX_BYTES",
    "GUARDDUTY",
    "LB",
    "LOG_TYPES",
    "MSK",
    "S3_ACCESS",
    "UNKNOWN",
    "VPC_FLOW",
    "WAF",
    "ObjectTooLarge",
    "S3LogError",
    "S3Object",
    "S3Stats",
    "classify",
    "decompressed",
    "read_entries",
]
