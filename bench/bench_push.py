"""Push-API benchmark: the three scenarios of the README, measured with the workplace's bench_push tool.

The tool (../shared/tools/bench_push.py) starts a counting Loki sink and the relay with a
Promtail config, drives the relay with `wrk` posting one pre-encoded body, waits until the
sink has every line, and reports lines/s, relay CPU per line and peak RSS.

    python bench/bench_push.py [--seconds 10] [--tool PATH]

Needs `wrk` (Debian package wrk). Prints one Markdown table row per scenario.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT.parent / "shared" / "tools" / "bench_push.py"

SCENARIOS = [
    ("protobuf 10 streams x 100 lines", ["--format", "proto", "--streams", "10", "--lines", "100"], 2.0),
    ("JSON 10 streams x 100 lines", ["--format", "json", "--streams", "10", "--lines", "100"], 3.0),
    ("protobuf 1000 streams x 1 line", ["--format", "proto", "--streams", "1000", "--lines", "1"], 4.0),
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--tool", default=str(TOOL))
    ap.add_argument("--relay", default=f"{sys.executable} -m relay -config.file={{config}}")
    a = ap.parse_args()
    print("| scenario | lines/s delivered | relay CPU µs/line (target) | peak RSS MB |")
    print("|---|---|---|---|")
    for name, args, target in SCENARIOS:
        out = subprocess.run(
            [sys.executable, a.tool, "--relay", a.relay, "--seconds", str(a.seconds), *args],
            capture_output=True, text=True, cwd=ROOT,
        )
        if out.returncode != 0:
            print(out.stdout, out.stderr, file=sys.stderr)
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        lost = r["expected_lines"] - r["delivered_lines"]
        note = "" if lost <= 0 else f" ({lost} lines not delivered!)"
        print(f"| {name} | {r['lines_per_s']:,} | {r['cpu_s_per_million_lines']:.2f} ({target:.1f}) | {r['peak_rss_mb']}{note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
