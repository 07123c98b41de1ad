"""Issue 2, item 2: the `loki-relay` command line, Promtail style, black box (`python -m relay`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

import relay
from tests.conftest import ROOT, free_port, push_config


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relay", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def write(tmp: Path, doc: Any, name: str = "c.yaml") -> Path:
    p = tmp / name
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return p


def jpush(port: int, labels: dict[str, str], lines: list[str], *, tenant: str | None = None,
          path: str = "/loki/api/v1/push") -> httpx.Response:
    now = time.time_ns()
    body = orjson.dumps({"streams": [{"stream": labels, "values": [[str(now + i), ln] for i, ln in enumerate(lines)]}]})
    headers = {"Content-Type": "application/json"}
    if tenant is not None:
        headers["X-Scope-OrgID"] = tenant
    return httpx.post(f"http://127.0.0.1:{port}{path}", content=body, headers=headers, timeout=10)


def valid_doc(url: str = "http://127.0.0.1:1/loki/api/v1/push", port: int = 3999) -> dict[str, Any]:
    return {
        "clients": [{"url": url}],
        "scrape_configs": [{"job_name": "push", "loki_push_api": {"server": {"http_listen_port": port}}}],
    }


# ---- flag syntax -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["-config.file={}", "--config.file={}", "-config.file {}", "--config.file {}"])
def test_flag_forms_take_the_value(tmp_path: Path, form: str) -> None:
    bad = valid_doc()
    bad["scrape_configs"][0]["loki_push_api"]["bogus_key"] = 1
    path = write(tmp_path, bad)
    r = run_cli("-check-syntax", *form.format(path).split(" "))
    assert r.returncode == 1, r.stderr
    assert "scrape_configs[0].loki_push_api.bogus_key: unknown configuration key" in r.stderr


@pytest.mark.parametrize("switch", ["-check-syntax", "--check-syntax", "-check-syntax=true", "--check-syntax=1"])
def test_boolean_flag_forms(tmp_path: Path, switch: str) -> None:
    r = run_cli(switch, f"-config.file={write(tmp_path, valid_doc())}")
    assert r.returncode == 0, r.stderr
    assert "Valid config file!" in r.stdout


def test_version() -> None:
    for flag in ("-version", "--version"):
        r = run_cli(flag)
        assert r.returncode == 0
        assert r.stdout.startswith(f"loki-relay, version {relay.__version__} ")


@pytest.mark.parametrize("args", [["-no-such-flag"], ["--client.urll=http://x"], ["stray"], ["-config.file"],
                                  ["-check-syntax=maybe"]])
def test_bad_command_line_exits_2(args: list[str]) -> None:
    r = run_cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "usage: loki-relay" in r.stderr


# ---- -check-syntax ---------------------------------------------------------------------------


def test_check_syntax_valid_and_sends_nothing(tmp_path: Path, receiver: Any) -> None:
    r = run_cli("-check-syntax", f"-config.file={write(tmp_path, valid_doc(receiver.url))}")
    assert r.returncode == 0, r.stderr
    assert receiver.requests() == []


def _with(mutate: Any) -> dict[str, Any]:
    doc = valid_doc()
    mutate(doc)
    return doc


BAD_CONFIGS = {
    "invalid relabel regex": (
        _with(lambda d: d["scrape_configs"][0].update(
            relabel_configs=[{"source_labels": ["a"], "target_label": "b"},
                             {"source_labels": ["a"], "regex": "((", "target_label": "b"}])),
        ["job 'push'", "relabel_configs", "relabel rule 2", "invalid regex '(('"],
    ),
    "unknown relabel action": (
        _with(lambda d: d["scrape_configs"][0].update(relabel_configs=[{"action": "explode"}])),
        ["job 'push'", "relabel rule 1", "explode"],
    ),
    "relabel hashmod without modulus": (
        _with(lambda d: d["scrape_configs"][0].update(
            relabel_configs=[{"action": "hashmod", "source_labels": ["a"], "target_label": "b"}])),
        ["job 'push'", "relabel rule 1", "modulus"],
    ),
    "nested relabel regex": (
        _with(lambda d: d["scrape_configs"][0]["loki_push_api"].update(
            relabel_configs=[{"source_labels": ["a"], "regex": "[", "target_label": "b"}])),
        ["job 'push'", "loki_push_api.relabel_configs", "relabel rule 1"],
    ),
    "unknown top-level key": (_with(lambda d: d.update(scrape_confgs=[])), ["scrape_confgs: unknown configuration key"]),
    "unknown client key": (
        _with(lambda d: d["clients"][0].update(batchwiat="1s")), ["clients[0].batchwiat: unknown configuration key"],
    ),
    "unknown nested server key": (
        _with(lambda d: d["scrape_configs"][0]["loki_push_api"]["server"].update(http_listen_prot=1)),
        ["scrape_configs[0].loki_push_api.server.http_listen_prot: unknown configuration key"],
    ),
    "missing url": (_with(lambda d: d["clients"][0].pop("url")), ["clients[0].url", "needs a url"]),
    "bad url scheme": (_with(lambda d: d["clients"][0].update(url="ftp://x/")), ["clients[0].url"]),
    "missing job_name": (_with(lambda d: d["scrape_configs"][0].pop("job_name")), ["scrape_configs[0].job_name"]),
    "duplicate job": (
        _with(lambda d: d["scrape_configs"].append(
            {"job_name": "push", "loki_push_api": {"server": {"http_listen_port": 3998}}})),
        ["duplicate job_name 'push'"],
    ),
    "port clash between jobs": (
        _with(lambda d: d["scrape_configs"].append(
            {"job_name": "two", "loki_push_api": {"server": {"http_listen_port": 3999}}})),
        ["job 'two'", "3999"],
    ),
    "bad duration": (_with(lambda d: d["clients"][0].update(batchwait="soon")), ["clients[0].batchwait", "soon"]),
    "bad label name": (
        _with(lambda d: d["scrape_configs"][0]["loki_push_api"].update(labels={"bad-name": "x"})),
        ["scrape_configs[0].loki_push_api.labels", "bad-name"],
    ),
    "bad log level": (_with(lambda d: d.update(server={"log_level": "loud"})), ["server.log_level"]),
    "basic_auth and bearer_token": (
        _with(lambda d: d["clients"][0].update(basic_auth={"username": "u", "password": "p"}, bearer_token="t")),
        ["clients[0]", "mutually exclusive"],
    ),
    "missing password_file": (
        _with(lambda d: d["clients"][0].update(basic_auth={"username": "u", "password_file": "/nonexistent/pw"})),
        ["clients[0].basic_auth.password_file", "/nonexistent/pw"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_check_syntax_refuses_naming_the_problem(tmp_path: Path, case: str) -> None:
    doc, needles = BAD_CONFIGS[case]
    r = run_cli("-check-syntax", f"-config.file={write(tmp_path, doc)}")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Valid config file" not in r.stdout
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = write(tmp_path, "clients: [\n")
    r = run_cli("-check-syntax", f"-config.file={bad}")
    assert r.returncode == 1 and "invalid YAML" in r.stderr
    r = run_cli("-check-syntax", f"-config.file={tmp_path / 'nope.yaml'}")
    assert r.returncode == 1 and "nope.yaml" in r.stderr


def test_a_bad_config_also_stops_a_normal_start(tmp_path: Path) -> None:
    doc = valid_doc()
    doc["clients"][0]["bogus"] = 1
    r = run_cli(f"-config.file={write(tmp_path, doc)}", timeout=20)
    assert r.returncode == 1
    assert "clients[0].bogus: unknown configuration key" in r.stderr


# ---- -config.expand-env ----------------------------------------------------------------------


def test_expand_env(tmp_path: Path, receiver: Any, start_relay: Any) -> None:
    port = free_port()
    text = f"""
clients:
  - url: ${{RX_URL}}
    batchwait: 100ms
scrape_configs:
  - job_name: push
    loki_push_api:
      server:
        http_listen_address: 127.0.0.1
        http_listen_port: ${{PUSH_PORT}}
      labels:
        env: ${{RELAY_TEST_ENV:-fallback}}
        team: ${{RELAY_TEST_TEAM:-fallback}}
        plain: ${{RELAY_TEST_UNSET_VAR}}x
"""
    path = write(tmp_path, text, "env.yaml")
    env = {"RX_URL": receiver.url, "PUSH_PORT": str(port), "RELAY_TEST_TEAM": "blue"}
    env_clean = {k: v for k, v in os.environ.items() if k not in ("RELAY_TEST_ENV", "RELAY_TEST_UNSET_VAR")}
    # Without the flag, ${...} stays literal: the url is invalid.
    r = subprocess.run([sys.executable, "-m", "relay", "-check-syntax", f"-config.file={path}"], cwd=ROOT,
                       capture_output=True, text=True, env={**env_clean, **env}, timeout=20)
    assert r.returncode == 1 and "clients[0].url" in r.stderr
    rel = start_relay(None, f"-config.file={path}", "-config.expand-env", env=env, ready=False)
    # conftest's env merge keeps os.environ; the two variables above must be unset there.
    assert "RELAY_TEST_ENV" not in os.environ and "RELAY_TEST_UNSET_VAR" not in os.environ
    rel.wait_ready()
    assert jpush(port, {"app": "a"}, ["hello"]).status_code == 204
    (e,) = receiver.wait_for(1)
    assert e["labels"] == {"app": "a", "env": "fallback", "team": "blue", "plain": "x"}
    assert e["line"] == "hello"


# ---- client flags ----------------------------------------------------------------------------


def test_client_url_and_tenant_id_flags(receiver: Any, start_relay: Any) -> None:
    port = free_port()
    cfg = push_config(receiver.url, port)
    cfg["clients"] = []
    start_relay(cfg, f"-client.url={receiver.url}", "-client.tenant-id", "team-x")
    assert jpush(port, {"app": "a"}, ["one", "two"]).status_code == 204
    entries = receiver.wait_for(2, timeout=5)
    assert [(e["tenant"], e["line"]) for e in entries] == [("team-x", "one"), ("team-x", "two")]
    assert {r["headers"]["x-scope-orgid"] for r in receiver.requests()} == {"team-x"}


def test_client_url_flag_adds_a_client_to_the_file_ones(start_relay: Any) -> None:
    from tests.loki_receiver import Receiver

    with Receiver.start() as a, Receiver.start() as b:
        port = free_port()
        cfg = push_config(a.url, port)
        start_relay(cfg, f"--client.url={b.url}")
        assert jpush(port, {"app": "a"}, ["x"]).status_code == 204
        assert [e["line"] for e in a.wait_for(1)] == ["x"]
        assert [e["line"] for e in b.wait_for(1, timeout=5)] == ["x"]  # default batchwait 1s


def test_external_labels_flag_file_value_wins_per_client(receiver: Any, start_relay: Any) -> None:
    port = free_port()
    cfg = push_config(receiver.url, port)
    c = cfg["clients"][0]
    cfg["clients"] = [
        {**c, "tenant_id": "with-file", "external_labels": {"env": "from-file"}},
        {**c, "tenant_id": "without"},
    ]
    start_relay(cfg, "-client.external-labels=env=from-flag,region=eu")
    assert jpush(port, {"app": "a"}, ["x"]).status_code == 204
    (e1,) = receiver.wait_for(1, tenant="with-file")
    (e2,) = receiver.wait_for(1, tenant="without")
    assert e1["labels"] == {"app": "a", "env": "from-file", "region": "eu"}
    assert e2["labels"] == {"app": "a", "env": "from-flag", "region": "eu"}


def test_bad_external_labels_flag(tmp_path: Path) -> None:
    r = run_cli("-check-syntax", f"-config.file={write(tmp_path, valid_doc())}", "-client.external-labels=novalue")
    assert r.returncode == 1 and "-client.external-labels" in r.stderr


def test_server_port_flag_overrides_the_file(receiver: Any, start_relay: Any) -> None:
    port, server_port = free_port(), free_port()
    rel = start_relay(push_config(receiver.url, port), f"-server.http-listen-port={server_port}", ready=False)
    # conftest writes its own port into the file (and passes it first); the last flag wins.
    end = time.monotonic() + 15
    while True:
        assert rel.proc.poll() is None, rel.log()
        try:
            if httpx.get(f"http://127.0.0.1:{server_port}/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < end, rel.log()
        time.sleep(0.05)
    assert "loki_relay_received_entries_total" in httpx.get(f"http://127.0.0.1:{server_port}/metrics").text
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{rel.server_port}/ready", timeout=1)


# ---- -dry-run -----------------------------------------------------------------------------------


def test_dry_run_prints_and_sends_nothing(receiver: Any, start_relay: Any) -> None:
    port = free_port()
    rel = start_relay(push_config(receiver.url, port), "-dry-run")
    assert jpush(port, {"app": "dry"}, ["first line", "second line"]).status_code == 204
    time.sleep(0.5)  # > batchwait: the batch went to the dry-run printer
    assert rel.stop(signal.SIGTERM) == 0
    out = rel.proc.stdout.read().decode()
    rows = [ln.split("\t") for ln in out.splitlines() if ln.strip()]
    assert [r[1:] for r in rows] == [['{app="dry"}', "first line"], ['{app="dry"}', "second line"]]
    assert all(r[0].endswith("Z") and r[0][:4].isdigit() for r in rows)
    assert receiver.requests() == []


# ---- -print-config-stderr ------------------------------------------------------------------------


def test_print_config_stderr_masks_secrets(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("pw-from-file-123\n")
    (tmp_path / "tok").write_text("token-from-file-456\n")
    doc = valid_doc()
    base = doc["clients"][0]
    doc["clients"] = [
        {**base, "basic_auth": {"username": "alice", "password": "hunter2-secret"}},
        {**base, "basic_auth": {"username": "bob", "password_file": str(tmp_path / "pw")}},
        {**base, "bearer_token": "bearer-secret-789"},
        {**base, "bearer_token_file": str(tmp_path / "tok"), "headers": {"Authorization": "Custom hdr-secret-000"}},
    ]
    r = run_cli("-check-syntax", "-print-config-stderr", f"-config.file={write(tmp_path, doc)}")
    assert r.returncode == 0, r.stderr
    for secret in ("hunter2-secret", "pw-from-file-123", "bearer-secret-789", "token-from-file-456", "hdr-secret-000"):
        assert secret not in r.stderr
        assert secret not in r.stdout
    printed = yaml.safe_load(r.stderr[r.stderr.index("server:"):])
    clients = printed["clients"]
    assert clients[0]["basic_auth"] == {"username": "alice", "password": "<secret>"}
    assert clients[1]["basic_auth"] == {"username": "bob", "password": "<secret>"}
    assert clients[2]["bearer_token"] == "<secret>"
    assert clients[3]["bearer_token"] == "<secret>"
    assert clients[3]["headers"] == {"Authorization": "<secret>"}
    assert printed["jobs"][0]["name"] == "push"
    assert printed["server"]["http_listen_port"] == 9080


def test_print_config_masks_url_passwords_header_values_and_aws_keys(tmp_path: Path) -> None:
    doc = valid_doc()
    doc["clients"] = [{"url": "http://carol:url-secret-111@loki:3100/loki/api/v1/push",
                       "headers": {"X-Api-Token": "hdr-secret-222"}}]
    doc["scrape_configs"].append({"job_name": "aws", "aws_lambda": {
        "server": {"http_listen_port": free_port()},
        "s3": {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "sak-secret-333", "session_token": "st-secret-444"}}})
    r = run_cli("-check-syntax", "-print-config-stderr", f"-config.file={write(tmp_path, doc)}")
    assert r.returncode == 0, r.stderr
    for secret in ("url-secret-111", "hdr-secret-222", "sak-secret-333", "st-secret-444"):
        assert secret not in r.stderr + r.stdout
    printed = yaml.safe_load(r.stderr[r.stderr.index("server:"):])
    assert printed["clients"][0]["url"] == "http://carol:<secret>@loki:3100/loki/api/v1/push"
    assert printed["clients"][0]["headers"] == {"X-Api-Token": "<secret>"}


# ---- -log.level --------------------------------------------------------------------------------


def _inert_config(receiver_url: str, port: int) -> dict[str, Any]:
    cfg = push_config(receiver_url, port)
    cfg["positions"] = {"filename": "/tmp/positions.yaml"}
    return cfg


def test_log_level_flag(receiver: Any, start_relay: Any, tmp_path: Path) -> None:
    # info (default): start-up lines and the inert-key warning, in logfmt.
    port = free_port()
    rel = start_relay(_inert_config(receiver.url, port))
    assert jpush(port, {"app": "a"}, ["x"]).status_code == 204
    receiver.wait_for(1)
    log = rel.log()
    assert "level=info" in log and "loki-relay ready" in log
    assert "HTTP Request" not in log  # no line per batch sent
    warn = [ln for ln in log.splitlines() if "positions" in ln]
    assert len(warn) == 1 and "level=warn" in warn[0], log
    rel.stop()

    rel = start_relay(_inert_config(receiver.url, free_port()), "-log.level=warn")
    log = rel.log()
    assert "level=info" not in log and "loki-relay ready" not in log
    assert len([ln for ln in log.splitlines() if "positions" in ln and "level=warn" in ln]) == 1, log
    rel.stop()

    rel = start_relay(_inert_config(receiver.url, free_port()), "-log.level", "error")
    assert rel.log().strip() == ""


def test_log_format_json(receiver: Any, start_relay: Any) -> None:
    rel = start_relay(push_config(receiver.url, free_port()), "-log.format=json")
    lines = [orjson.loads(ln) for ln in rel.log().splitlines() if ln.strip()]
    assert lines and all({"ts", "level", "caller", "msg"} <= set(d) for d in lines)
    assert any(d["msg"].startswith("loki-relay ready") and d["level"] == "info" for d in lines)


def test_bad_log_level_flag(tmp_path: Path) -> None:
    r = run_cli("-check-syntax", f"-config.file={write(tmp_path, valid_doc())}", "-log.level=loud")
    assert r.returncode == 1 and "log.level" in r.stderr


# ---- no config file: embedded defaults ----------------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def test_embedded_defaults_push_on_3500(receiver: Any, start_relay: Any) -> None:
    if not _port_free(3500):
        pytest.skip("port 3500 is in use on this machine")
    start_relay(None, env={"LOKI_URL": receiver.url})
    assert jpush(3500, {"app": "defaults"}, ["via defaults"]).status_code == 204
    (e,) = receiver.wait_for(1, timeout=5)  # default batchwait 1s
    assert e["labels"] == {"app": "defaults"} and e["line"] == "via defaults" and e["tenant"] == ""


def test_embedded_defaults_check_syntax_and_print(receiver: Any) -> None:
    r = run_cli("-check-syntax", "-print-config-stderr", env={"LOKI_URL": receiver.url})
    assert r.returncode == 0, r.stderr
    printed = yaml.safe_load(r.stderr)
    assert printed["clients"][0]["url"] == receiver.url
    assert printed["jobs"][0]["kind"] == "loki_push_api"
    assert printed["jobs"][0]["listen"]["http_listen_port"] == 3500
    assert printed["server"]["http_listen_port"] == 9080
    env = {k: v for k, v in os.environ.items() if k != "LOKI_URL"}
    r = subprocess.run([sys.executable, "-m", "relay", "-check-syntax", "-print-config-stderr"], cwd=ROOT,
                       capture_output=True, text=True, env=env, timeout=20)
    assert yaml.safe_load(r.stderr)["clients"][0]["url"] == "http://localhost:3100/loki/api/v1/push"
