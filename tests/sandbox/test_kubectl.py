"""kubectl itself against the emulator: the acceptance list of the emulator's issue.

Every test runs the real `kubectl` binary through a written kubeconfig with a fresh
discovery cache, and asserts on what kubectl prints, as a person at a terminal would.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.kube import KubeEmulator
from tests.support import tools

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
"""


@pytest.fixture
def emulator() -> Iterator[KubeEmulator]:
    with KubeEmulator(ready_delay=0.05) as emu:
        yield emu


@pytest.fixture
def kubectl(emulator: KubeEmulator, tmp_path: Path) -> Kubectl:
    binary = tools.kubectl()
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    cache = tmp_path / "cache"

    def run(
        *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [binary, f"--kubeconfig={kubeconfig}", f"--cache-dir={cache}", *args]
        result = subprocess.run(cmd, capture_output=True, text=True, input=stdin, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result

    return run


def _image(kubectl: Kubectl) -> str:
    return kubectl(
        "get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    ).stdout


def _revision(kubectl: Kubectl) -> str:
    path = "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
    return kubectl("get", "deploy", "web", "-o", path).stdout


def _replicasets(kubectl: Kubectl) -> dict[str, dict[str, str]]:
    """Image -> {revision, history} of the ReplicaSets `kubectl get rs -l app=web` lists."""
    out = kubectl("get", "rs", "-l", "app=web", "-o", "json").stdout
    result = {}
    for rs in json.loads(out)["items"]:
        annotations = rs["metadata"]["annotations"]
        result[rs["spec"]["template"]["spec"]["containers"][0]["image"]] = {
            "revision": annotations["deployment.kubernetes.io/revision"],
            "history": annotations.get("deployment.kubernetes.io/revision-history", ""),
        }
    return result


@pytest.fixture
def three_revisions(kubectl: Kubectl) -> Kubectl:
    """`web` applied, then `set image` twice, each rollout waited for."""
    assert "deployment.apps/web created" in kubectl("apply", "-f", "-", stdin=DEPLOYMENT).stdout
    kubectl("rollout", "status", "deploy/web", "--timeout=30s")
    for image in ("nginx:1.26", "nginx:1.27"):
        out = kubectl("set", "image", "deploy/web", f"web={image}").stdout
        assert out.strip() == "deployment.apps/web image updated"
        assert (
            "successfully rolled out"
            in kubectl("rollout", "status", "deploy/web", "--timeout=30s").stdout
        )
    return kubectl


def test_history_shows_three_revisions(three_revisions: Kubectl) -> None:
    out = three_revisions("rollout", "history", "deploy/web").stdout
    rows = [line.split()[0] for line in out.splitlines()[2:] if line.strip()]
    assert rows == ["1", "2", "3"]
    assert "CHANGE-CAUSE" in out


def test_undo_returns_to_previous_image_as_revision_four(three_revisions: Kubectl) -> None:
    assert (
        "deployment.apps/web rolled back" in three_revisions("rollout", "undo", "deploy/web").stdout
    )
    three_revisions("rollout", "status", "deploy/web", "--timeout=30s")
    assert _image(three_revisions) == "nginx:1.26"
    assert _revision(three_revisions) == "4"
    sets = _replicasets(three_revisions)
    assert sets["nginx:1.26"] == {"revision": "4", "history": "2"}
    assert sets["nginx:1.25"]["revision"] == "1"
    assert len(sets) == 3  # the old ReplicaSet was reused, not duplicated


def test_undo_to_revision_two(three_revisions: Kubectl) -> None:
    three_revisions("rollout", "undo", "deploy/web", "--to-revision=2")
    three_revisions("rollout", "status", "deploy/web", "--timeout=30s")
    assert _image(three_revisions) == "nginx:1.26"
    assert _revision(three_revisions) == "4"


def test_undo_to_missing_revision_prints_kubectls_error(three_revisions: Kubectl) -> None:
    result = three_revisions("rollout", "undo", "deploy/web", "--to-revision=10", check=False)
    assert result.returncode != 0
    assert "error: unable to find specified revision 10 in history" in result.stderr
    assert _image(three_revisions) == "nginx:1.27"


def test_get_rs_by_label_lists_revisions(three_revisions: Kubectl) -> None:
    columns = (
        "NAME:.metadata.name,REVISION:.metadata.annotations.deployment\\.kubernetes\\.io/revision"
    )
    out = three_revisions("get", "rs", "-l", "app=web", "-o", f"custom-columns={columns}").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "REVISION"]
    assert sorted(line.split()[1] for line in lines[1:]) == ["1", "2", "3"]
    assert all(line.startswith("web-") for line in lines[1:])
    table = three_revisions("get", "rs", "-l", "app=web").stdout.splitlines()
    assert table[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert len(table) == 4


def test_rollout_status_times_out_for_a_crashing_image(
    kubectl: Kubectl, emulator: KubeEmulator
) -> None:
    kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
    kubectl("rollout", "status", "deploy/web", "--timeout=30s")
    emulator.crash_image("nginx:broken")
    kubectl("set", "image", "deploy/web", "web=nginx:broken")
    result = kubectl("rollout", "status", "deploy/web", "--timeout=2s", check=False)
    assert result.returncode != 0
    assert "timed out waiting for the condition" in result.stderr
    # The stalled surge rollout leaves the old pods serving.
    pods = kubectl("get", "pods", "-l", "app=web").stdout
    assert pods.count("Running") == 3
    assert "CrashLoopBackOff" in pods


def test_progress_deadline_is_reported_by_rollout_status(
    kubectl: Kubectl, emulator: KubeEmulator
) -> None:
    manifest = DEPLOYMENT.replace(
        "  replicas: 3\n", "  replicas: 3\n  progressDeadlineSeconds: 1\n"
    )
    kubectl("apply", "-f", "-", stdin=manifest)
    kubectl("rollout", "status", "deploy/web", "--timeout=30s")
    emulator.crash_image("nginx:broken")
    kubectl("set", "image", "deploy/web", "web=nginx:broken")
    result = kubectl("rollout", "status", "deploy/web", "--timeout=30s", check=False)
    assert result.returncode != 0
    assert 'deployment "web" exceeded its progress deadline' in result.stderr


def test_get_deploy_table_and_yaml(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
    kubectl("rollout", "status", "deploy/web", "--timeout=30s")
    table = kubectl("get", "deploy").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:4] == ["web", "3/3", "3", "3"]
    wide = kubectl("get", "deploy", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["web", "nginx:1.25", "app=web"]
    labelled = kubectl("get", "deploy", "-L", "app").stdout.splitlines()
    assert labelled[0].split()[-1] == "APP" and labelled[1].split()[-1] == "web"
    manifest = kubectl("get", "deploy", "web", "-o", "yaml").stdout
    for defaulted in (
        "revisionHistoryLimit: 10",
        "progressDeadlineSeconds: 600",
        "maxSurge: 25%",
        "imagePullPolicy: IfNotPresent",
        "terminationGracePeriodSeconds: 30",
        'deployment.kubernetes.io/revision: "1"',
        "reason: NewReplicaSetAvailable",
    ):
        assert defaulted in manifest
    pods = kubectl("get", "pods").stdout.splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]


def test_scale_and_three_patch_types(kubectl: Kubectl, emulator: KubeEmulator) -> None:
    kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
    assert (
        kubectl("scale", "deploy/web", "--replicas=5").stdout.strip()
        == "deployment.apps/web scaled"
    )
    emulator.wait_for(
        lambda: (
            (emulator.get("deployments", "default", "web") or {})
            .get("status", {})
            .get("readyReplicas")
            == 5
        )
    )
    kubectl("patch", "deploy", "web", "-p", '{"metadata":{"labels":{"tier":"front"}}}')
    kubectl("patch", "deploy", "web", "--type=merge", "-p", '{"spec":{"replicas":2}}')
    kubectl(
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.26"}]',
    )
    stored = emulator.get("deployments", "default", "web") or {}
    assert stored["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert stored["spec"]["replicas"] == 2
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    bad = kubectl(
        "patch", "deploy", "web", "--type=merge", "-p", '{"spec":{"replicas":-1}}', check=False
    )
    assert bad.returncode != 0
    assert 'The Deployment "web" is invalid: spec.replicas: Invalid value: -1' in bad.stderr


def test_server_dry_run_apply_changes_nothing(kubectl: Kubectl, emulator: KubeEmulator) -> None:
    kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
    kubectl("rollout", "status", "deploy/web", "--timeout=30s")
    before = emulator.dump()
    changed = DEPLOYMENT.replace("nginx:1.25", "nginx:1.26")
    out = kubectl("apply", "--dry-run=server", "-f", "-", stdin=changed).stdout
    assert out.strip() == "deployment.apps/web configured (server dry run)"
    assert emulator.dump() == before
    assert emulator.audit[-1]["dryRun"] is True


def test_delete_cascades_to_replicasets_and_pods(kubectl: Kubectl, emulator: KubeEmulator) -> None:
    kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
    kubectl("rollout", "status", "deploy/web", "--timeout=30s")
    # kubectl 1.36 appends "from default namespace"; older ones end at "deleted".
    assert kubectl("delete", "deploy", "web").stdout.startswith('deployment.apps "web" deleted')
    emulator.wait_for(lambda: not emulator.list("replicasets") and not emulator.list("pods"))
    missing = kubectl("get", "deploy", "web", check=False)
    assert missing.returncode != 0
    assert 'Error from server (NotFound): deployments.apps "web" not found' in missing.stderr


def test_invalid_manifest_gets_the_api_servers_status(kubectl: Kubectl) -> None:
    broken = DEPLOYMENT.replace(
        "    metadata:\n      labels: {app: web}", "    metadata:\n      labels: {app: other}"
    )
    result = kubectl("apply", "-f", "-", stdin=broken, check=False)
    assert result.returncode != 0
    assert (
        'The Deployment "web" is invalid: spec.template.metadata.labels: Invalid value'
        in result.stderr
    )
    assert "`selector` does not match template `labels`" in result.stderr


def test_impersonation_is_audited(kubectl: Kubectl, emulator: KubeEmulator) -> None:
    kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
    kubectl("--as=alice", "--as-group=sre", "scale", "deploy/web", "--replicas=1")
    entry = emulator.audit[-1]
    assert (entry["verb"], entry["resource"], entry["subresource"]) == (
        "patch",
        "deployments",
        "scale",
    )
    assert (entry["user"], entry["groups"]) == ("alice", ["sre"])
