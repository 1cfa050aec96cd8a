"""The real CRDs of Argo CD, Flux and Argo Rollouts, installed into the real control plane.

``.ci/fetch-crds`` downloads them from the tools' own Go modules (``go mod download``) into
Go's module cache and gathers them outside the repository; CI exports the directory as
``ROLLBACK_BOT_GITOPS_CRDS``. Without them a test skips on a developer's machine (with the
command that fetches them) and fails under ``CI=true``. The tools' controllers are not
running: a test that needs a controller's reaction plays it itself and says so.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sandbox.realk8s import RealControlPlane

ROOT = Path(__file__).resolve().parents[2]
FETCH = ROOT / ".ci" / "fetch-crds"
FILES = (
    "argocd-application.yaml",
    "flux-kustomization.yaml",
    "flux-helmrelease.yaml",
    "argo-rollout.yaml",
    "argo-analysisrun.yaml",
)
NAMES = (
    "applications.argoproj.io",
    "kustomizations.kustomize.toolkit.fluxcd.io",
    "helmreleases.helm.toolkit.fluxcd.io",
    "rollouts.argoproj.io",
    "analysisruns.argoproj.io",
)
_installed: set[str] = set()


def crd_dir() -> Path:
    """Where the fetched CRDs are, or skip (fail under ``CI=true``) when they are not."""
    given = os.environ.get("ROLLBACK_BOT_GITOPS_CRDS")
    if given:
        where = Path(given)
    else:
        printed = subprocess.run(
            ["bash", str(FETCH), "--print-dir"], capture_output=True, text=True, check=False
        )
        where = Path(printed.stdout.strip())
    missing = [f for f in FILES if not (where / f).is_file()]
    if missing:
        reason = (
            f"GitOps CRDs missing in {where} ({', '.join(missing)}); fetch them with "
            f"bash {FETCH.relative_to(ROOT)}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return where


def install_crds(plane: RealControlPlane) -> None:
    """Apply every CRD (server-side: Argo CD's is too large for the last-applied annotation)
    and wait until the apiserver serves them. Once per control plane."""
    key = str(plane.url)
    if key in _installed:
        return
    where = crd_dir()
    for name in FILES:
        plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(where / name))
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in NAMES]
    )
    _installed.add(key)
