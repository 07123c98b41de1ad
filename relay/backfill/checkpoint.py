"""Which units (S3 objects, CloudWatch windows) Loki has acknowledged, kept across runs.

The file is a journal of JSON lines: a header (source, job, the run's start time),
then one line per unit done, appended and fsync'd right after Loki acknowledged the
unit's last entry. Opening rewrites it compactly through a temporary file, fsync and
rename, so the file on disk is always either the old or the new whole. A line cut
short by a crash is ignored: that unit is sent again, with the same entries, which Loki
drops as duplicates.

Default place: $XDG_CACHE_HOME/loki-relay/ (else ~/.cache/loki-relay/), one file per
(source, job).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path
from typing import Any

import orjson

VERSION = 1


def default_path(source: str, job: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    digest = hashlib.sha256(f"{source}\n{job}".encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", source.split("://", 1)[-1]).strip("_")[:60]
    return Path(base) / "loki-relay" / f"backfill-{readable}-{digest}.jsonl"


class CheckpointError(Exception):
    pass


class Checkpoint:
    def __init__(self, path: Path, source: str, job: str, started_ns: int) -> None:
        self.path = path
        self.source = source
        self.job = job
        self.started_ns = started_ns  # replaced by the stored one when resuming
        self.done: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._file: Any = None

    def load(self) -> bool:
        """Read a previous run's file; True if there was one."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return False
        lines = data.split(b"\n")
        try:
            head = orjson.loads(lines[0])
        except orjson.JSONDecodeError:
            raise CheckpointError(f"{self.path}: not a backfill checkpoint") from None
        if not isinstance(head, dict) or head.get("version") != VERSION:
            raise CheckpointError(f"{self.path}: not a backfill checkpoint (version {VERSION})")
        if head.get("source") != self.source or head.get("job") != self.job:
            raise CheckpointError(f"{self.path}: belongs to source {head.get('source')!r} job {head.get('job')!r}, "
                                  f"not {self.source!r} job {self.job!r}")
        self.started_ns = int(head.get("started_ns", self.started_ns))
        for raw in lines[1:]:
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue  # a torn last line: that unit is not done
            if isinstance(rec, dict) and isinstance(rec.get("done"), str):
                self.done[rec.pop("done")] = rec
        return True

    def open(self) -> None:
        """Rewrite compactly (temp + fsync + rename), then keep the file open to append."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        head = {"version": VERSION, "source": self.source, "job": self.job, "started_ns": self.started_ns}
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(head) + b"\n")
            f.writelines(orjson.dumps({"done": unit, **rec}) + b"\n" for unit, rec in self.done.items())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        self._file = open(self.path, "ab")  # noqa: SIM115  (held open across marks, closed by close())

    def mark(self, unit: str, **info: Any) -> None:
        """Record a unit as acknowledged; returns once it is on disk. Blocking: call from a thread."""
        line = orjson.dumps({"done": unit, **info}) + b"\n"
        with self._lock:
            self.done[unit] = info
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
