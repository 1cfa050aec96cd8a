"""The chart against the real apiserver (tests/support/realk8s.py): every object it renders
passes server-side validation, and `helm install` / `helm upgrade` put them in the cluster,
the migration Job running (to completion, through kwok) before the Deployment changes.

kwok stands in for kubelets: pods do not run the image, so these show the objects and what
the cluster does with them, not the bot answering its probes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.realk8s import RealControlPlane
from tests.deploy.chart import CHART, SECRET, catalog, run_helm, template, values, values_file
from tests.support.realk8s import unique_name


class Site:
    """A release namespace and two catalog namespaces of its own, removed afterwards."""

    def __init__(self, cp: RealControlPlane) -> None:
        self.cp = cp
        self.namespace = unique_name("rollback-bot")
        self.shop = unique_name("shop")
        self.search = unique_name("search")
        for ns in (self.namespace, self.shop, self.search):
            cp.kubectl("create", "namespace", ns)

    def values(self, **overrides: Any) -> dict[str, Any]:
        data = values(catalog=catalog(shop=self.shop, search=self.search))
        data.update(overrides)
        return data

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        done = self.cp.kubectl("get", kind, name, "-n", namespace or self.namespace, "-o", "json")
        return dict(json.loads(done.stdout))

    def can(self, verb: str, resource: str, namespace: str, sa: str = "rb-rollback-bot") -> bool:
        done = self.cp.kubectl(
            "auth",
            "can-i",
            verb,
            resource,
            "-n",
            namespace,
            f"--as=system:serviceaccount:{self.namespace}:{sa}",
            check=False,
        )
        return done.stdout.strip() == "yes"

    def close(self) -> None:
        for ns in (self.namespace, self.shop, self.search):
            self.cp.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def site(real_control_plane: RealControlPlane) -> Iterator[Site]:
    s = Site(real_control_plane)
    yield s
    s.close()


def test_every_rendered_object_passes_server_side_dry_run(site: Site, tmp_path: Path) -> None:
    data = site.values(
        catalog=catalog(impersonate=True, shop=site.shop, search=site.search),
        networkPolicy={"enabled": True, "from": [{"namespaceSelector": {}}]},
    )
    rendered = template(tmp_path, data, namespace=site.namespace)
    done = site.cp.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    expected = [
        "networkpolicy.networking.k8s.io/rb-rollback-bot",
        "poddisruptionbudget.policy/rb-rollback-bot",
        "serviceaccount/rb-rollback-bot",
        "configmap/rb-rollback-bot-catalog",
        f"clusterrole.rbac.authorization.k8s.io/rb-rollback-bot-{site.namespace}-impersonate",
        f"clusterrolebinding.rbac.authorization.k8s.io/rb-rollback-bot-{site.namespace}-impersonate",
        "role.rbac.authorization.k8s.io/rb-rollback-bot",
        "role.rbac.authorization.k8s.io/rb-rollback-bot-leader-election",
        "rolebinding.rbac.authorization.k8s.io/rb-rollback-bot",
        "service/rb-rollback-bot",
        "deployment.apps/rb-rollback-bot",
        "job.batch/rb-rollback-bot-migrate",
    ]
    for name in expected:
        assert any(line.startswith(f"{name} created (server dry run)") for line in lines), (
            name,
            lines,
        )
    # Nothing was created.
    gone = site.cp.kubectl(
        "get", "deployment", "rb-rollback-bot", "-n", site.namespace, check=False
    )
    assert gone.returncode != 0


def test_helm_install_and_upgrade_into_the_real_apiserver(site: Site, tmp_path: Path) -> None:
    cp = site.cp
    kubeconfig = cp.kubeconfig_path
    cp.kubectl(
        "create",
        "secret",
        "generic",
        SECRET,
        "-n",
        site.namespace,
        "--from-literal=SLACK_BOT_TOKEN=xoxb-not-a-real-token",
        "--from-literal=SLACK_SIGNING_SECRET=not-a-real-secret",
        "--from-literal=DATABASE_URL=postgresql://bot:pw@postgres:5432/rollback_bot",
    )
    install = run_helm(
        "install",
        "rb",
        str(CHART),
        "-n",
        site.namespace,
        "-f",
        str(values_file(tmp_path, site.values())),
        "--wait",
        "--timeout=150s",
        kubeconfig=kubeconfig,
    )
    assert "STATUS: deployed" in install.stdout

    # The pre-install hook ran to completion before the release's objects went in.
    job = site.get("job", "rb-rollback-bot-migrate")
    assert job["status"].get("succeeded") == 1
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    first_job_uid = job["metadata"]["uid"]
    deployment = site.get("deployment", "rb-rollback-bot")
    assert job["status"]["completionTime"] <= deployment["metadata"]["creationTimestamp"]

    # The Deployment as intended, and available (kwok marks its pods Ready).
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert deployment["status"].get("availableReplicas") == 2
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "rb-rollback-bot"
    (bot,) = pod["containers"]
    env = {e["name"]: e for e in bot["env"]}
    assert env["LEADER_ELECTION"]["value"] == "true"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["SLACK_BOT_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == SECRET
    assert bot["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert bot["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "podAntiAffinity" in pod["affinity"]
    for kind, name in [
        ("service", "rb-rollback-bot"),
        ("serviceaccount", "rb-rollback-bot"),
        ("configmap", "rb-rollback-bot-catalog"),
        ("poddisruptionbudget", "rb-rollback-bot"),
        ("role", "rb-rollback-bot-leader-election"),
    ]:
        assert site.get(kind, name)["metadata"]["name"] == name

    # What the installed RBAC lets the bot's ServiceAccount do, asked of the apiserver.
    for ns in (site.shop, site.search):
        assert site.can("patch", "deployments.apps", ns)
        assert site.can("list", "replicasets.apps", ns)
        assert site.can("create", "configmaps", ns)
        assert not site.can("delete", "deployments.apps", ns)
        assert not site.can("get", "secrets", ns)
        assert not site.can("update", "leases.coordination.k8s.io", ns)
    assert site.can("update", "leases.coordination.k8s.io", site.namespace)
    assert site.can("create", "leases.coordination.k8s.io", site.namespace)
    assert not site.can("delete", "leases.coordination.k8s.io", site.namespace)
    assert not site.can("patch", "deployments.apps", site.namespace)
    assert not site.can("impersonate", "users", site.namespace)

    # An upgrade with a changed catalog: the migration Job runs again first, the pods roll.
    before = spec["template"]["metadata"]["annotations"]["checksum/catalog"]
    changed = site.values()
    changed["catalog"]["services"][1]["stable_window_seconds"] = 600
    upgrade = run_helm(
        "upgrade",
        "rb",
        str(CHART),
        "-n",
        site.namespace,
        "-f",
        str(values_file(tmp_path, changed)),
        "--wait",
        "--timeout=150s",
        kubeconfig=kubeconfig,
    )
    assert "STATUS: deployed" in upgrade.stdout
    job = site.get("job", "rb-rollback-bot-migrate")
    assert job["metadata"]["uid"] != first_job_uid
    assert job["status"].get("succeeded") == 1
    after = site.get("deployment", "rb-rollback-bot")
    assert after["spec"]["template"]["metadata"]["annotations"]["checksum/catalog"] != before
    configmap = site.get("configmap", "rb-rollback-bot-catalog")
    assert "stable_window_seconds: 600" in configmap["data"]["catalog.yaml"]

    run_helm("uninstall", "rb", "-n", site.namespace, "--wait", kubeconfig=kubeconfig)
    gone = cp.kubectl("get", "role", "rb-rollback-bot", "-n", site.shop, check=False)
    assert gone.returncode != 0


def test_the_guides_ingress_example_passes_server_side_dry_run(site: Site) -> None:
    from tests.deploy.chart import ROOT

    text = (ROOT / "docs" / "ingress-example.yaml").read_text()
    text = text.replace("namespace: rollback-bot", f"namespace: {site.namespace}")
    done = site.cp.kubectl("apply", "--dry-run=server", "-f", "-", input=text, check=False)
    assert done.returncode == 0, done.stderr
    assert "ingress.networking.k8s.io/rollback-bot created (server dry run)" in done.stdout
