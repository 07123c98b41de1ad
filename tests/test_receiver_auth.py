"""Receiver security: basic/bearer auth on push listeners, TLS (optionally mutual), no leaked secrets."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from relay.auth import ListenerAuth, check, parse_auth
from relay.config import ConfigError
from tests.conftest import ROOT, free_port, push_config
from tests.loki_receiver import Receiver, encode_push

PASSWORD = "s3cr3t-pa55w0rd-xyzzy"
TOKEN = "t0ken-abcdef-0123456789"


def body(line: str) -> bytes:
    return encode_push([('{job="auth"}', [(time.time_ns(), line)])])


def post(url: str, line: str, **kw) -> httpx.Response:  # noqa: ANN003
    verify = kw.pop("verify", True)
    cert = kw.pop("cert", None)
    if isinstance(verify, str):
        verify = ssl.create_default_context(cafile=verify)
        if cert:
            verify.load_cert_chain(*cert)
    headers = {"content-type": "application/x-protobuf", **kw.pop("headers", {})}
    with httpx.Client(verify=verify, timeout=10) as http:
        return http.post(url, content=body(line), headers=headers, **kw)


def test_parse_auth(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    a = parse_auth({"basic": {"username": "u", "password_file": str(pw)}}, "auth")
    assert (a.username, a.password) == ("u", PASSWORD)
    with pytest.raises(ConfigError, match="needs basic"):
        parse_auth({}, "auth")
    with pytest.raises(ConfigError, match="mutually exclusive"):
        parse_auth({"bearer_token": "a", "bearer_token_file": str(pw)}, "auth")
    with pytest.raises(ConfigError, match="cannot read"):
        parse_auth({"bearer_token_file": str(tmp_path / "missing")}, "auth")
    with pytest.raises(ConfigError, match="auth.basic"):
        parse_auth({"basic": {"username": "u"}}, "auth")


def test_check() -> None:
    import base64

    a = ListenerAuth(username="u", password="p", bearer_token="tok")
    basic = b"Basic " + base64.b64encode(b"u:p")
    assert check(a, basic) and check(a, b"basic " + base64.b64encode(b"u:p"))
    assert check(a, b"Bearer tok")
    for bad in (None, b"", b"Bearer tok2", b"Bearer", b"Basic " + base64.b64encode(b"u:q"),
                b"Basic " + base64.b64encode(b"up"), b"Basic !!!", b"Digest x", b"Basic " + base64.b64encode(b"v:p")):
        assert not check(a, bad)
    assert not check(ListenerAuth(username="u", password="p"), b"Bearer tok")


def test_basic_and_bearer_auth_on_push_listener(start_relay, receiver: Receiver, tmp_path: Path) -> None:
    tokfile = tmp_path / "token"
    tokfile.write_text(TOKEN)
    port = free_port()
    cfg = push_config(receiver.url, port)
    cfg["scrape_configs"][0]["loki_push_api"]["server"]["auth"] = {
        "basic": {"username": "promtail", "password": "${PUSH_PASSWORD}"},
        "bearer_token_file": str(tokfile),
    }
    relay = start_relay(cfg, "-config.expand-env", env={"PUSH_PASSWORD": PASSWORD})
    url = relay.url(port)
    r = post(url, "anonymous")
    assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]
    assert post(url, "wrong", auth=("promtail", "nope")).status_code == 401
    assert post(url, "wrong-bearer", headers={"authorization": "Bearer nope"}).status_code == 401
    assert post(url, "basic-ok", auth=("promtail", PASSWORD)).status_code == 204
    assert post(url, "bearer-ok", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 204
    assert httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200  # health checks stay open
    got = receiver.wait_for(2, 10)
    assert sorted(e["line"] for e in got) == ["basic-ok", "bearer-ok"]
    assert relay.metric("loki_relay_auth_failures_total") == 3
    relay.stop()
    text = relay.log() + relay.metrics() if relay.proc.poll() is None else relay.log()
    assert PASSWORD not in text and TOKEN not in text


def test_print_config_masks_listener_and_client_secrets(tmp_path: Path) -> None:
    import yaml

    cfg = push_config("http://u:pw@127.0.0.1:1/loki/api/v1/push", free_port())
    cfg["clients"][0]["basic_auth"] = {"username": "c", "password": PASSWORD + "-client"}
    cfg["scrape_configs"][0]["loki_push_api"]["server"]["auth"] = {
        "basic": {"username": "promtail", "password": PASSWORD}, "bearer_token": TOKEN}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "relay", f"-config.file={path}", "-print-config-stderr", "-check-syntax"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert PASSWORD not in r.stderr and TOKEN not in r.stderr
    assert "<secret>" in r.stderr


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl CLI")
    d = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=test-ca")
    for name, cn in (("server", "127.0.0.1"), ("client", "client")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        (d / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1\n" if name == "server" else "extendedKeyUsage=clientAuth\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return d


def test_tls_listener(start_relay, receiver: Receiver, certs: Path) -> None:
    port = free_port()
    cfg = push_config(receiver.url, port)
    cfg["scrape_configs"][0]["loki_push_api"]["server"]["http_tls_config"] = {
        "cert_file": str(certs / "server.pem"), "key_file": str(certs / "server.key")}
    relay = start_relay(cfg)
    url = f"https://127.0.0.1:{port}/loki/api/v1/push"
    assert post(url, "over-tls", verify=str(certs / "ca.pem")).status_code == 204
    with pytest.raises(httpx.ConnectError):  # not trusted without the CA
        post(url, "untrusted")
    with pytest.raises(httpx.HTTPError):  # plain HTTP on a TLS port
        post(relay.url(port), "plain")
    assert [e["line"] for e in receiver.wait_for(1, 10)] == ["over-tls"]


def test_mutual_tls_listener_with_auth(start_relay, receiver: Receiver, certs: Path) -> None:
    port = free_port()
    cfg = push_config(receiver.url, port)
    server = cfg["scrape_configs"][0]["loki_push_api"]["server"]
    server["http_tls_config"] = {"cert_file": str(certs / "server.pem"), "key_file": str(certs / "server.key"),
                                 "client_ca_file": str(certs / "ca.pem")}
    server["auth"] = {"bearer_token": TOKEN}
    relay = start_relay(cfg)
    url = f"https://127.0.0.1:{port}/loki/api/v1/push"
    ca = str(certs / "ca.pem")
    with pytest.raises((httpx.HTTPError, ssl.SSLError)):  # no client certificate
        post(url, "no-cert", verify=ca)
    client = (str(certs / "client.pem"), str(certs / "client.key"))
    assert post(url, "cert-no-token", verify=ca, cert=client).status_code == 401
    r = post(url, "cert-and-token", verify=ca, cert=client, headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 204
    assert [e["line"] for e in receiver.wait_for(1, 10)] == ["cert-and-token"]
    assert relay.proc.poll() is None


def test_client_url_credentials_stay_out_of_logs_and_metrics(start_relay, receiver: Receiver) -> None:
    port = free_port()
    url = receiver.url.replace("http://", f"http://loki:{PASSWORD}@")
    relay = start_relay(push_config(url, port))
    assert post(relay.url(port), "through").status_code == 204
    receiver.wait_for(1, 10)
    assert receiver.requests()[0]["headers"]["authorization"].startswith("Basic ")
    text = relay.metrics()
    relay.stop()
    assert PASSWORD not in text and PASSWORD not in relay.log()
