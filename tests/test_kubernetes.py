"""Issue 11, item 5: the Kubernetes manifests. Each kustomization is rendered here (resources, components,
strategic-merge patches, images: the subset of kustomize the manifests use, so no kustomize binary is
needed) and every object is validated against the Kubernetes schema of kubernetes-validate's newest
version, strictly (unknown fields refused). Then what the issue asks of them is checked."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import ROOT

K8S = ROOT / "deploy" / "kubernetes"
BASE = K8S / "base"
WAL = K8S / "overlays" / "wal"
KUSTOMIZE_KEYS = {"apiVersion", "kind", "resources", "components", "patches", "images"}


def merge(base: Any, patch: Any) -> Any:
    """A strategic merge, as kustomize does it for what these manifests patch: maps merge; lists of
    named maps merge by name; other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    if (isinstance(base, list) and isinstance(patch, list) and all(isinstance(x, dict) and "name" in x for x in base + patch)):
        out = [copy.deepcopy(x) for x in base]
        for item in patch:
            at = next((i for i, x in enumerate(out) if x["name"] == item["name"]), None)
            if at is None:
                out.append(copy.deepcopy(item))
            else:
                out[at] = merge(out[at], item)
        return out
    return copy.deepcopy(patch)


def key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def render(folder: Path, kind: str = "Kustomization") -> list[dict[str, Any]]:
    doc = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert doc["kind"] == kind, folder
    assert set(doc) <= KUSTOMIZE_KEYS, f"{folder}: this renderer does not know {set(doc) - KUSTOMIZE_KEYS}"
    objects: list[dict[str, Any]] = []
    for res in doc.get("resources", []):
        path = (folder / res).resolve()
        assert path.exists(), f"{folder}: resource {res} does not exist"
        objects += render(path) if path.is_dir() else [o for o in yaml.safe_load_all(path.read_text()) if o]
    for comp in doc.get("components", []):
        objects += render((folder / comp).resolve(), "Component")
    for p in doc.get("patches", []):
        assert set(p) == {"path"}, p
        patch = yaml.safe_load((folder / p["path"]).read_text())
        at = [i for i, o in enumerate(objects) if key(o) == key(patch)]
        assert len(at) == 1, f"{folder}: patch {p['path']} matches {len(at)} objects"
        if patch.pop("$patch", None) == "delete":
            del objects[at[0]]
        else:
            objects[at[0]] = merge(objects[at[0]], patch)
    for image in doc.get("images", []):
        for o in objects:
            for c in pod_spec(o).get("containers", []) if pod_spec(o) else []:
                name, _, tag = c["image"].partition(":")
                if name == image["name"]:
                    c["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag or 'latest')}"
    keys = [key(o) for o in objects]
    assert len(keys) == len(set(keys)), f"{folder}: duplicate objects {keys}"
    return objects


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    return obj["spec"]["template"]["spec"] if obj["kind"] in ("Deployment", "StatefulSet") else None


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for o in objects:
        assert o["kind"] not in out or o["kind"] == "Service", o["kind"]
        out.setdefault(o["kind"], o)
    return out


def seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", text)
    assert m, text
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


@pytest.fixture(params=[BASE, WAL], ids=["base", "wal"])
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def test_every_object_is_valid_against_the_kubernetes_schema(rendered: list[dict[str, Any]]) -> None:
    version = kubernetes_validate.latest_version()
    checked = 0
    for o in rendered:
        if o["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked by test_podmonitor_scrapes_the_metrics_port
        kubernetes_validate.validate(o, version, strict=True)
        checked += 1
    assert checked >= 5


def test_the_validator_refuses_a_bad_manifest() -> None:
    dep = by_kind(render(BASE))["Deployment"]
    bad = copy.deepcopy(dep)
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/ready"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)
    bad = copy.deepcopy(dep)
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)


def test_base_has_what_the_issue_lists() -> None:
    kinds = sorted(o["kind"] for o in render(BASE))
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]


def test_wal_overlay_is_a_statefulset_with_a_claim_per_pod() -> None:
    objects = render(WAL)
    kinds = {o["kind"] for o in objects}
    assert "Deployment" not in kinds and {"StatefulSet", "PodMonitor"} <= kinds
    k = by_kind(objects)
    sts = k["StatefulSet"]
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in pod_spec(sts)["containers"][0]["volumeMounts"]}
    relay_cfg = yaml.safe_load(k["ConfigMap"]["data"]["relay.yaml"])
    assert relay_cfg["wal"]["enabled"] is True
    assert mounts[claim["metadata"]["name"]] == relay_cfg["wal"]["dir"]
    assert k["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "name": sts["metadata"]["name"]}
    headless = [o for o in objects if o["kind"] == "Service" and o["spec"].get("clusterIP") == "None"]
    assert [s["metadata"]["name"] for s in headless] == [sts["spec"]["serviceName"]]
    # The WAL's size limit fits its claim.
    claim_size = claim["spec"]["resources"]["requests"]["storage"]
    assert claim_size.endswith("Gi") and relay_cfg["wal"]["max_size"].endswith("GiB")
    assert int(relay_cfg["wal"]["max_size"][:-3]) < int(claim_size[:-2])


def test_pods_drain_before_they_are_killed(rendered: list[dict[str, Any]]) -> None:
    k = by_kind(rendered)
    workload = k.get("Deployment") or k["StatefulSet"]
    spec = pod_spec(workload)
    relay_cfg = yaml.safe_load(k["ConfigMap"]["data"]["relay.yaml"])["server"]
    drain = seconds(relay_cfg["shutdown_delay"]) + seconds(relay_cfg["graceful_shutdown_timeout"])
    assert spec["terminationGracePeriodSeconds"] > drain
    c = spec["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    probe = c["readinessProbe"]["httpGet"]
    assert probe["path"] == "/ready" and ports[probe["port"]] == relay_cfg["http_listen_port"]
    assert "/ready" not in str(c.get("livenessProbe"))  # a draining relay must not be restarted


def test_pods_run_locked_down(rendered: list[dict[str, Any]]) -> None:
    for o in rendered:
        spec = pod_spec(o)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]


def test_dockerfile_user_matches_the_pods() -> None:
    user = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)[-1]
    spec = pod_spec(by_kind(render(BASE))["Deployment"])
    assert user == f"{spec['securityContext']['runAsUser']}:{spec['securityContext']['runAsGroup']}"


def test_services_and_pdb_select_the_pods(rendered: list[dict[str, Any]]) -> None:
    k = by_kind(rendered)
    workload = k.get("Deployment") or k["StatefulSet"]
    labels = workload["spec"]["template"]["metadata"]["labels"]
    assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"] for p in pod_spec(workload)["containers"][0]["ports"]}
    for s in (o for o in rendered if o["kind"] == "Service"):
        assert s["spec"]["selector"].items() <= labels.items()
        assert {p["targetPort"] for p in s["spec"]["ports"]} <= ports
    assert k["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert k["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2


def test_podmonitor_scrapes_the_metrics_port() -> None:
    k = by_kind(render(WAL))
    pm = k["PodMonitor"]
    assert pm["apiVersion"] == "monitoring.coreos.com/v1"
    labels = k["StatefulSet"]["spec"]["template"]["metadata"]["labels"]
    assert pm["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (ep,) = pm["spec"]["podMetricsEndpoints"]
    ports = {p["name"]: p["containerPort"] for p in pod_spec(k["StatefulSet"])["containers"][0]["ports"]}
    assert ports[ep["port"]] == 9080 and ep["path"] == "/metrics" and ep["honorLabels"] is True


def test_config_in_the_configmaps_passes_check_syntax(rendered: list[dict[str, Any]], tmp_path: Path) -> None:
    k = by_kind(rendered)
    workload = k.get("Deployment") or k["StatefulSet"]
    c = pod_spec(workload)["containers"][0]
    conf = tmp_path / "relay.yaml"
    conf.write_text(k["ConfigMap"]["data"]["relay.yaml"])
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    flags = [a for a in c["args"] if not a.startswith("-config.file=")]
    r = subprocess.run([sys.executable, "-m", "relay", "-check-syntax", f"-config.file={conf}", *flags], cwd=ROOT,
                       capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin", **env})
    assert r.returncode == 0, r.stderr
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert any(a == f"-config.file={m}/relay.yaml" for m in mounts for a in c["args"])
