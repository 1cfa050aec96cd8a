"""The Helm chart under deploy/helm/rollback-bot, rendered and installed with the real helm.

helm is the one ``.ci/build-realk8s`` builds beside the control plane (pinned in
sandbox/realk8s/versions.env); a missing helm skips on a developer's machine and fails under
``CI=true`` (tests/support/tools.py).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sandbox.realk8s.binaries import default_bin_dir
from tests.support import tools

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "rollback-bot"
RBAC_DIR = ROOT / "deploy" / "rbac"
SECRET = "rollback-bot-tokens"


def helm() -> str:
    pinned = default_bin_dir() / "helm"
    if os.access(pinned, os.X_OK):
        return str(pinned)
    tools.missing("helm", "bash .ci/build-realk8s builds the pinned one")
    raise AssertionError("unreachable")


def run_helm(
    *args: str, kubeconfig: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # helm keeps caches and repositories per user: none of it matters to a local chart.
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    done = subprocess.run(
        [helm(), *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"helm {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


def catalog(
    *, impersonate: bool = False, shop: str = "shop", search: str = "search", helm: bool = False
) -> dict[str, Any]:
    """A small valid catalog in two namespaces; ``impersonate`` maps a Slack user."""
    checkout: dict[str, Any] = {
        "name": "checkout",
        "namespace": shop,
        "deployment": "checkout",
        "environment": "staging",
        "channel": "C0ALERTS",
        "match": {"service": "checkout"},
    }
    if impersonate:
        checkout["impersonate"] = {"U0BOB": {"user": "bob@example.com", "groups": ["sre"]}}
    search = {
        "name": "search",
        "namespace": search,
        "deployment": "search",
        "environment": "staging",
        "channel": "C0SEARCH",
        "match": {"service": "search"},
    }
    services = [checkout, search]
    if helm:
        services.append(
            {
                "name": "payments",
                "helm": {"release": "payments", "namespace": "payments"},
                "environment": "staging",
                "channel": "C0PAY",
                "match": {"service": "payments"},
            }
        )
    return {"services": services}


def values(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"existingSecret": SECRET, "catalog": catalog()}
    base.update(overrides)
    return base


def values_file(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def template(
    tmp_path: Path,
    data: dict[str, Any],
    *,
    release: str = "rb",
    namespace: str = "rollback-bot",
    extra: Sequence[str] = (),
) -> str:
    return run_helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "-f",
        str(values_file(tmp_path, data)),
        *extra,
    ).stdout


def documents(rendered: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


Grant = tuple[str, str, str]  # (apiGroup, resource, verb)


def grants(rules: list[dict[str, Any]]) -> set[Grant]:
    """What rules allow, one (apiGroup, resource, verb) per permission, however grouped."""
    out: set[Grant] = set()
    for rule in rules:
        assert not rule.get("resourceNames"), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out.add((group, resource, verb))
    return out


def shipped_rbac_grants() -> dict[str, set[Grant]]:
    """deploy/rbac/*.yaml as sets: what the bot needs in each catalog namespace, the Lease
    rule for the leader (its own namespace), impersonation (cluster-wide) and the rights
    of Helm-release targets (their namespaces only)."""
    parts: dict[str, set[Grant]] = {
        "catalog": set(),
        "leases": set(),
        "impersonate": set(),
        "helm": set(),
        "gitops": set(),
    }
    for path in sorted(RBAC_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc["kind"] not in ("Role", "ClusterRole"):
                continue
            for grant in grants(doc["rules"]):
                if path.name == "helm-releases.yaml":
                    parts["helm"].add(grant)
                elif path.name == "gitops.yaml":
                    parts["gitops"].add(grant)
                elif grant[1] == "leases":
                    parts["leases"].add(grant)
                elif grant[2] == "impersonate":
                    parts["impersonate"].add(grant)
                else:
                    parts["catalog"].add(grant)
    return parts
