"""Issue 2, item 10: the deploy files. No Docker engine here: check what can be checked without one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"


def compose() -> dict[str, Any]:
    assert COMPOSE.is_file(), "docker-compose.yml is missing from the repository root"
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict)
    return doc


def mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) of every bind mount with a relative host path."""
    out = []
    for v in service.get("volumes") or []:
        if isinstance(v, dict):
            src, dst = v.get("source", ""), v.get("target", "")
        else:
            src, dst = (v.split(":") + [""])[:2]
        if src.startswith("."):
            out.append(((ROOT / src).resolve(), dst))
    return out


def test_dockerfile_slim_non_root_with_healthcheck() -> None:
    assert DOCKERFILE.is_file(), "Dockerfile is missing from the repository root"
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M | re.I)
    assert froms and "slim" in froms[-1], froms  # the final stage is a slim image
    users = re.findall(r"^USER\s+(\S+)", text, re.M | re.I)
    assert users and users[-1] not in ("root", "0", "0:0"), users
    health = re.search(r"^HEALTHCHECK\b.*?(?<!\\)$", text, re.M | re.I | re.S)
    assert health and "/ready" in text[health.start():health.start() + 600]
    for path in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", text, re.M):
        for src in path.split():
            assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repository"


def test_compose_has_loki_relay_grafana() -> None:
    services = compose()["services"]
    assert {"loki", "relay", "grafana"} <= set(services)
    relay = services["relay"]
    assert "build" in relay or "image" in relay
    ports = [str(p) for p in relay.get("ports") or []]
    assert any(p.split(":")[-1].split("/")[0].strip().split()[0] == "3500" for p in ports), ports
    assert "loki" in (relay.get("depends_on") or [])


def test_compose_relay_config_passes_check_syntax() -> None:
    relay = compose()["services"]["relay"]
    command = relay.get("command") or []
    if isinstance(command, str):
        command = command.split()
    conf_flag = next((c for c in command if re.match(r"--?config\.file[= ]", c)), None)
    assert conf_flag, f"the relay service has no -config.file: {command}"
    in_container = conf_flag.split("=", 1)[1]
    host = next((h for h, c in mounts(relay) if c == in_container), None)
    assert host is not None and host.is_file(), f"{in_container} is not mounted from a file in the repository"
    env = {**os.environ, **{k: str(v) for k, v in (relay.get("environment") or {}).items()}}
    flags = [c for c in command if not re.match(r"--?config\.file[= ]", c)]
    r = subprocess.run([sys.executable, "-m", "relay", "-check-syntax", f"-config.file={host}", *flags],
                       cwd=ROOT, capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 0, r.stderr
    assert "Valid config file!" in r.stdout
    # It listens where compose publishes.
    doc = yaml.safe_load(host.read_text())
    push_ports = {job["loki_push_api"]["server"]["http_listen_port"] for job in doc["scrape_configs"]
                  if "loki_push_api" in job}
    published = {int(str(p).split(":")[-1].split("/")[0]) for p in relay.get("ports") or []}
    assert push_ports and push_ports <= published


def test_grafana_has_the_loki_data_source_provisioned() -> None:
    grafana = compose()["services"]["grafana"]
    provisioned = [h for h, c in mounts(grafana) if "provisioning/datasources" in c]
    assert provisioned, "no data source provisioning mounted into grafana"
    sources: list[dict[str, Any]] = []
    for h in provisioned:
        files = [h] if h.is_file() else sorted(h.glob("*.y*ml"))
        for f in files:
            sources += yaml.safe_load(f.read_text()).get("datasources") or []
    loki = [s for s in sources if s.get("type") == "loki"]
    assert loki and loki[0]["url"].rstrip("/") == "http://loki:3100"
