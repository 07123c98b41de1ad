#!/usr/bin/env python3
"""Cold start of the in-process Lambda handler (relay.aws.lambda_handler).

Each run is a fresh interpreter that imports the handler and handles one CloudWatch Logs event of
10 log events, pushed to the Loki stand-in (tests/loki_receiver.py, a separate process). Reported:
the handler's import, the first invocation (settings, HTTP client, push), and the whole process
(interpreter start to exit); median and max over --runs, as wall time and as CPU time (which a busy machine stretches far
less). Lambda's own init (runtime start, code download) comes on top.

  python bench/bench_lambda_cold.py                     # this checkout, on this interpreter's packages
  python bench/bench_lambda_cold.py --zip dist/loki-relay-lambda-x86_64.zip
                                                        # the unpacked zip, with only boto3 besides
                                                        # (build it with --python of this interpreter)
"""

from __future__ import annotations

import argparse
import base64
import gzip
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests package: the Loki stand-in
from tests.loki_receiver import Receiver  # noqa: E402

CHILD = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
from relay.aws import lambda_handler
t1, c1 = time.perf_counter(), time.process_time()
lambda_handler.handler(json.loads(sys.argv[1]), None)
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"import": t1 - t0, "invoke": t2 - t1, "import_cpu": c1 - c0, "invoke_cpu": c2 - c1}))
"""


def event() -> dict:
    payload = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/bench/cold", "logStream": "s",
               "subscriptionFilters": ["f"],
               "logEvents": [{"id": str(i), "timestamp": int(time.time() * 1000), "message": f"cold start line {i}"}
                             for i in range(10)]}
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


def isolated_env(zip_path: Path, tmp: Path) -> tuple[dict[str, str], list[str]]:
    task, runtime = tmp / "task", tmp / "runtime"
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(task)
    runtime.mkdir()
    for name in ["boto3", "botocore", "jmespath", "s3transfer", "dateutil", "six", "urllib3"]:
        spec = importlib.util.find_spec(name)
        src = Path(spec.origin)  # type: ignore[union-attr, arg-type]
        (runtime / (src.parent.name if src.name == "__init__.py" else src.name)).symlink_to(
            src.parent if src.name == "__init__.py" else src)
    return {"PYTHONPATH": f"{task}{os.pathsep}{runtime}", "PYTHONNOUSERSITE": "1"}, ["-S"]


def children_cpu() -> float:
    """User + system CPU of the waited-for children so far (the whole child process, startup included)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--zip", type=Path, help="an unpacked build.py zip instead of this checkout")
    args = ap.parse_args()
    load = os.getloadavg()  # wall times stretch on a busy machine; CPU times much less
    rx = Receiver.start(no_reject_old_samples=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, WRITE_ADDRESS=rx.url, PRINT_LOG_LINE="false")
            flags: list[str] = []
            cwd = ROOT
            if args.zip:
                extra, flags = isolated_env(args.zip, Path(tmp))
                env.update(extra)
                cwd = Path(tmp)
            ev = json.dumps(event())
            imports, invokes, wholes = [], [], []
            imports_cpu, invokes_cpu, wholes_cpu = [], [], []
            for _ in range(args.runs):
                t0, c0 = time.perf_counter(), children_cpu()
                out = subprocess.run([sys.executable, *flags, "-c", CHILD, ev], env=env, cwd=cwd,
                                     capture_output=True, text=True, check=True)
                wholes.append(time.perf_counter() - t0)
                wholes_cpu.append(children_cpu() - c0)
                r = json.loads(out.stdout)
                imports.append(r["import"])
                invokes.append(r["invoke"])
                imports_cpu.append(r["import_cpu"])
                invokes_cpu.append(r["invoke_cpu"])
            assert len(rx.entries()) == 10 * args.runs, "not every entry reached the Loki stand-in"
    finally:
        rx.stop()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")
    for name, xs, cs in (("import handler", imports, imports_cpu), ("first invocation", invokes, invokes_cpu),
                         ("whole process", wholes, wholes_cpu)):
        print(f"{name:18} wall median {statistics.median(xs) * 1000:7.1f} ms  max {max(xs) * 1000:7.1f} ms"
              f"   CPU median {statistics.median(cs) * 1000:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
