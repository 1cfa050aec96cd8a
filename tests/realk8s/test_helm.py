"""helm's own install, upgrade and rollback against the real control plane."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from sandbox.realk8s import RealControlPlane, versions
from tests.support.realk8s import unique_name

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: '1'\n",
    "values.yaml": "image: registry.example/web:1\n",
    "templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels: {app: {{ .Release.Name }}}
spec:
  replicas: 2
  progressDeadlineSeconds: 8
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: app
          image: {{ .Values.image | quote }}
""",
}


def _helm(cp: RealControlPlane, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # Keep helm's repository cache and config out of $HOME.
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    argv = [
        str(cp.binary("helm")),
        f"--kubeconfig={cp.kubeconfig_path}",
        "--kube-context=admin",
        f"--namespace={cp.namespace}",
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=150, env=env, check=False)


def _deployment(cp: RealControlPlane, name: str) -> dict[str, Any]:
    out = cp.kubectl("get", "deployment", name, "-n", cp.namespace, "-o", "json").stdout
    result: dict[str, Any] = json.loads(out)
    return result


def test_helm_upgrade_to_a_crashing_release_then_helm_rollback(
    real_control_plane: RealControlPlane, tmp_path: Path
) -> None:
    cp = real_control_plane
    chart = tmp_path / "chart"
    for rel, text in CHART.items():
        (chart / rel).parent.mkdir(parents=True, exist_ok=True)
        (chart / rel).write_text(text)
    release = unique_name("web")

    version = _helm(cp, tmp_path, "version", "--short")
    assert version.stdout.startswith(versions()["HELM_VERSION"])
    lint = _helm(cp, tmp_path, "lint", str(chart))
    assert lint.returncode == 0, lint.stdout + lint.stderr

    install = _helm(cp, tmp_path, "install", release, str(chart), "--wait", "--timeout=60s")
    assert install.returncode == 0, install.stderr
    # --wait gives up when the crashing pods never become Ready: the upgrade fails.
    upgrade = _helm(
        cp, tmp_path, "upgrade", release, str(chart),
        "--set", "image=registry.example/web:2-crash", "--wait", "--timeout=10s",
    )  # fmt: skip
    assert upgrade.returncode != 0
    image = _deployment(cp, release)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.example/web:2-crash"

    rollback = _helm(cp, tmp_path, "rollback", release, "1", "--wait", "--timeout=60s")
    assert rollback.returncode == 0, rollback.stderr
    dep = _deployment(cp, release)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/web:1"
    assert dep["status"]["availableReplicas"] == 2

    history = json.loads(_helm(cp, tmp_path, "history", release, "-o", "json").stdout)
    assert [(h["revision"], h["status"]) for h in history] == [
        (1, "superseded"),
        (2, "failed"),
        (3, "deployed"),
    ]
    assert history[2]["description"] == "Rollback to 1"
