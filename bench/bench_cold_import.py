#!/usr/bin/env python3
"""Cold import of the Lambda function (`relay.aws.lambda_handler`): what every Lambda cold start pays
before the first event is read. Each run is a fresh interpreter; the figure is the median.

    python bench/bench_cold_import.py [--runs 21] [--module relay.aws.lambda_handler] [--root DIR] [--importtime]

`--root` is the checkout whose `relay` is imported (default: this one).

`--importtime` also prints the slowest imports of one run (python -X importtime).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Wall time, and CPU time (less disturbed by other work on a shared machine).
PROBE = """
import time
t, c = time.perf_counter(), time.process_time()
import {module}
print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)
"""


def once(module: str, root: Path) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=root, check=True,
                         capture_output=True, text=True)
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def slowest(module: str, root: Path, n: int = 15) -> list[tuple[int, str]]:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=root, check=True,
                         capture_output=True, text=True)
    rows = []
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return sorted(rows, reverse=True)[:n]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=21)
    p.add_argument("--module", default="relay.aws.lambda_handler")
    p.add_argument("--root", type=Path, default=ROOT)
    p.add_argument("--importtime", action="store_true")
    a = p.parse_args()
    once(a.module, a.root)  # warm the OS file cache and .pyc files: a cold *interpreter*, not a cold disk
    runs = [once(a.module, a.root) for _ in range(a.runs)]
    wall = sorted(w for w, _ in runs)
    cpu = sorted(c for _, c in runs)
    print(f"import {a.module} ({a.root}), {a.runs} fresh interpreters:")
    print(f"  wall: median {statistics.median(wall):.1f} ms (min {wall[0]:.1f}, max {wall[-1]:.1f})")
    print(f"  cpu:  median {statistics.median(cpu):.1f} ms (min {cpu[0]:.1f}, max {cpu[-1]:.1f})")
    if a.importtime:
        print("slowest imports of one run (cumulative µs):")
        for us, name in slowest(a.module, a.root):
            print(f"  {us:>8}  {name}")


if __name__ == "__main__":
    main()
