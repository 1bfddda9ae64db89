"""deploy/kubernetes: every variant renders with kustomize and validates offline.

Kubernetes objects: ``kubernetes-validate --strict`` for every Kubernetes version from
1.30 to the newest the installed package knows. KEDA's ScaledObject: KEDA's schema
from npm ``@kubernetes-models/keda`` (tests/kubernetes/validate-keda.mjs). Then what
the daemon relies on: probes on /readyz and /healthz, a preStop that drains, a grace
period that covers the drain, the memory limit from the downward API.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
VARIANTS = ["base", "keda", "daemonset"]
KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (for kubectl kustomize) is not installed")


def versions() -> list[str]:
    import kubernetes_validate

    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    found = {
        m.group(1) for p in schemas.iterdir() if (m := re.fullmatch(r"v(1\.(\d+)\.\d+)-local-strict", p.name))
    }
    wanted = [v for v in found if int(v.split(".")[1]) >= 30]
    return sorted(wanted, key=lambda v: tuple(int(x) for x in v.split(".")))


def render(variant: str) -> list[dict]:
    out = subprocess.run(
        [KUBECTL, "kustomize", str(DEPLOY / variant)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_kubernetes_object_validates_strictly(variant: str, tmp_path: Path) -> None:
    docs = [d for d in render(variant) if not d["apiVersion"].startswith("keda.sh/")]
    path = tmp_path / f"{variant}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    assert versions() and versions()[0] == "1.30.0", versions()
    for version in versions():
        out = subprocess.run(
            [str(Path(shutil.which("kubernetes-validate") or ROOT / ".venv/bin/kubernetes-validate")),
             "--strict", "-k", version, str(path)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert out.returncode == 0, f"Kubernetes {version}:\n{out.stdout}\n{out.stderr}"
        assert out.stdout.count(" passed for resource ") == len(docs), out.stdout


def test_the_scaled_object_validates_against_kedas_schema() -> None:
    objects = [d for d in render("keda") if d["kind"] == "ScaledObject"]
    assert len(objects) == 1
    assert not [d for d in render("keda") if d["kind"] == "HorizontalPodAutoscaler"]  # KEDA makes its own
    lines = "\n".join(json.dumps(o) for o in objects) + "\n"
    out = subprocess.run(
        ["node", str(Path(__file__).with_name("validate-keda.mjs"))],
        input=lines, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0 and "ok ScaledObject/noslate" in out.stdout, out.stdout + out.stderr
    bad = {**objects[0], "spec": {**objects[0]["spec"], "triggers": "not a list"}}
    out = subprocess.run(
        ["node", str(Path(__file__).with_name("validate-keda.mjs"))],
        input=json.dumps(bad) + "\n", capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 1 and "invalid ScaledObject" in out.stdout, out.stdout


def _pod(variant: str) -> dict:
    (workload,) = [d for d in render(variant) if d["kind"] in ("Deployment", "DaemonSet")]
    return workload["spec"]["template"]["spec"]


@pytest.mark.parametrize("variant", ["base", "daemonset"])
def test_the_pod_drains_probes_and_sizes_its_pool_from_its_limit(variant: str) -> None:
    pod = _pod(variant)
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "drain" in " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    env = {e["name"]: e for e in container["env"]}
    assert env["NOSLATE_MEMORY_LIMIT"]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.memory"
    assert env["NOSLATE_CONTROL_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "noslate-secrets"
    config = next(d for d in render(variant) if d["kind"] == "ConfigMap")
    import tomllib

    toml = tomllib.loads(config["data"]["noslate.toml"])
    grace, pre_stop = toml["server"]["grace_period"], 5
    assert pod["terminationGracePeriodSeconds"] >= grace + pre_stop, "the drain would be cut short"
    assert toml["server"]["metrics_bind"].endswith(":9090")


def test_the_rendered_config_is_a_valid_daemon_config(tmp_path: Path) -> None:
    config = next(d for d in render("base") if d["kind"] == "ConfigMap")
    path = tmp_path / "noslate.toml"
    path.write_text(config["data"]["noslate.toml"])
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "noslate"), "config", "validate", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_one_daemon_per_node() -> None:
    anti = _pod("base")["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    (ds,) = [d for d in render("daemonset") if d["kind"] == "DaemonSet"]
    assert not [d for d in render("daemonset") if d["kind"] in ("Deployment", "HorizontalPodAutoscaler")]
    assert ds["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "noslate",
        "app.kubernetes.io/part-of": "noslate-workers",
    }


def test_strict_validation_catches_an_unknown_field(tmp_path: Path) -> None:
    (deployment,) = [d for d in render("base") if d["kind"] == "Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # a typo
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(deployment))
    tool = shutil.which("kubernetes-validate") or str(ROOT / ".venv/bin/kubernetes-validate")
    out = subprocess.run(
        [tool, "--strict", "-k", "1.30.0", str(path)], capture_output=True, text=True, check=False
    )
    assert out.returncode != 0 and "readinesProbe" in out.stdout + out.stderr
