"""The real control plane itself: that it is real Kubernetes, and that tests can lean on it.

Each assertion here is upstream behaviour the emulator in sandbox/kube only imitates: the
deployment controller's revision bookkeeping, RBAC answers, impersonation checks, audit
records. The kubectl used is the one built at the server's version.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.realk8s import (
    ALICE,
    CRASH_ANNOTATION,
    MALLORY,
    NODE_NAME,
    ROLLBACK_BOT,
    BinariesMissing,
    RealControlPlane,
    iter_audit,
    versions,
    wait_until,
)
from tests.support.realk8s import require_binaries, unique_name

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"


def deployment(
    name: str,
    image: str,
    *,
    replicas: int = 2,
    pod_annotations: dict[str, str] | None = None,
    progress_deadline: int = 600,
) -> dict[str, Any]:
    template_meta: dict[str, Any] = {"labels": {"app": name}}
    if pod_annotations:
        template_meta["annotations"] = pod_annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": progress_deadline,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": template_meta,
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def apply(cp: RealControlPlane, manifest: dict[str, Any], *, user: str = "admin") -> None:
    cp.kubectl("apply", "-n", cp.namespace, "-f", "-", input=yaml.safe_dump(manifest), user=user)


def get_json(cp: RealControlPlane, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        cp.kubectl("get", "-n", cp.namespace, *args, "-o", "json").stdout
    )
    return result


def rollout_status(
    cp: RealControlPlane, name: str, timeout: str = "60s"
) -> subprocess.CompletedProcess[str]:
    return cp.kubectl(
        "rollout",
        "status",
        "-n",
        cp.namespace,
        f"deployment/{name}",
        f"--timeout={timeout}",
        check=False,
        timeout=120,
    )


def replicasets_of(cp: RealControlPlane, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(cp, "replicasets", "-l", f"app={name}")["items"]
    return items


def image_of(obj: dict[str, Any]) -> str:
    image: str = obj["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def test_server_and_kubectl_report_the_pinned_version(real_control_plane: RealControlPlane) -> None:
    cp = real_control_plane
    pinned = versions()["KUBERNETES_VERSION"]
    served = cp.request("GET", "/version").json()
    assert served["gitVersion"] == pinned
    client = json.loads(cp.kubectl("version", "-o", "json").stdout)
    assert client["clientVersion"]["gitVersion"] == pinned
    assert client["serverVersion"]["gitVersion"] == pinned
    node = get_json(cp, "node", NODE_NAME)
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True"


def test_applied_two_replica_deployment_becomes_available(
    real_control_plane: RealControlPlane,
) -> None:
    cp = real_control_plane
    name = unique_name("web")
    apply(cp, deployment(name, "registry.example/web:1.0"))
    result = rollout_status(cp, name)
    assert result.returncode == 0, result.stderr
    assert "successfully rolled out" in result.stdout

    dep = get_json(cp, "deployment", name)
    assert dep["status"]["availableReplicas"] == 2
    assert dep["status"]["readyReplicas"] == 2
    assert dep["metadata"]["annotations"][REVISION] == "1"
    pods = get_json(cp, "pods", "-l", f"app={name}")["items"]
    assert len(pods) == 2
    for pod in pods:
        # Scheduled by the real scheduler onto kwok's node, made Ready by kwok.
        assert pod["spec"]["nodeName"] == NODE_NAME
        assert pod["status"]["phase"] == "Running"
        # Owned through a ReplicaSet the real controller created.
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"


def test_set_image_twice_then_rollout_undo_restores_the_template(
    real_control_plane: RealControlPlane,
) -> None:
    cp = real_control_plane
    name = unique_name("api")
    ns = ("-n", cp.namespace)
    apply(cp, deployment(name, "registry.example/api:1"))
    assert rollout_status(cp, name).returncode == 0
    for tag in ("2", "3"):
        cp.kubectl("set", "image", *ns, f"deployment/{name}", f"app=registry.example/api:{tag}")
        status = rollout_status(cp, name)
        assert status.returncode == 0, status.stderr
    dep = get_json(cp, "deployment", name)
    assert image_of(dep) == "registry.example/api:3"
    assert dep["metadata"]["annotations"][REVISION] == "3"

    history = cp.kubectl("rollout", "history", *ns, f"deployment/{name}").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2", "3"]

    undo = cp.kubectl("rollout", "undo", *ns, f"deployment/{name}")
    assert "rolled back" in undo.stdout
    assert rollout_status(cp, name).returncode == 0
    dep = get_json(cp, "deployment", name)
    assert image_of(dep) == "registry.example/api:2"
    # The controller renumbers the ReplicaSet it rolled back to as the newest revision and
    # remembers the number it had.
    assert dep["metadata"]["annotations"][REVISION] == "4"
    by_image = {image_of(rs): rs for rs in replicasets_of(cp, name)}
    assert set(by_image) == {f"registry.example/api:{t}" for t in ("1", "2", "3")}
    restored = by_image["registry.example/api:2"]["metadata"]["annotations"]
    assert restored[REVISION] == "4"
    assert restored[REVISION_HISTORY] == "2"
    assert by_image["registry.example/api:2"]["status"]["readyReplicas"] == 2
    assert by_image["registry.example/api:3"]["spec"]["replicas"] == 0


@pytest.mark.parametrize(
    ("image", "pod_annotations"),
    [
        ("registry.example/shop:2.0.1-crash", None),
        ("registry.example/shop:2.0.1", {CRASH_ANNOTATION: "true"}),
    ],
    ids=["image-marker", "annotation-marker"],
)
def test_crash_marker_keeps_the_rollout_from_completing(
    real_control_plane: RealControlPlane, image: str, pod_annotations: dict[str, str] | None
) -> None:
    cp = real_control_plane
    name = unique_name("shop")
    good = deployment(name, "registry.example/shop:2.0.0", progress_deadline=8)
    apply(cp, good)
    assert rollout_status(cp, name).returncode == 0

    bad = deployment(name, image, pod_annotations=pod_annotations, progress_deadline=8)
    apply(cp, bad)
    status = rollout_status(cp, name, timeout="90s")
    assert status.returncode != 0
    # The real deployment controller gives up after progressDeadlineSeconds.
    assert "exceeded its progress deadline" in status.stderr

    dep = get_json(cp, "deployment", name)
    progressing = next(c for c in dep["status"]["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    # maxUnavailable 25% of 2 rounds down to 0: the old pods keep serving.
    assert dep["status"]["availableReplicas"] == 2
    assert dep["status"]["unavailableReplicas"] >= 1
    crashing = [
        p for p in get_json(cp, "pods", "-l", f"app={name}")["items"] if image_of_pod(p) == image
    ]
    assert crashing
    for pod in crashing:
        waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] == "CrashLoopBackOff"
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert ready["Ready"] == "False"

    # Rolling back to the good release completes again.
    cp.kubectl("rollout", "undo", "-n", cp.namespace, f"deployment/{name}")
    assert rollout_status(cp, name).returncode == 0
    assert image_of(get_json(cp, "deployment", name)) == "registry.example/shop:2.0.0"


def image_of_pod(pod: dict[str, Any]) -> str:
    image: str = pod["spec"]["containers"][0]["image"]
    return image


def can_i(cp: RealControlPlane, user: str, verb: str, resource: str) -> bool:
    """``kubectl auth can-i`` as ``user`` in the test namespace (a SelfSubjectAccessReview)."""
    result = cp.kubectl("auth", "can-i", verb, resource, "-n", cp.namespace, user=user, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer == "yes"


def _scale_patch(replicas: int) -> str:
    return json.dumps({"spec": {"replicas": replicas}})


def test_rbac_mallory_is_forbidden_alice_may_patch_and_the_audit_log_names_her(
    real_control_plane: RealControlPlane,
) -> None:
    cp = real_control_plane
    name = unique_name("pay")
    path = f"/apis/apps/v1/namespaces/{cp.namespace}/deployments/{name}"
    merge = {"Content-Type": "application/merge-patch+json"}
    apply(cp, deployment(name, "registry.example/pay:1"))

    denied = cp.request("PATCH", path, user=MALLORY.user, data=_scale_patch(3), headers=merge)
    assert denied.status_code == 403
    assert denied.json()["reason"] == "Forbidden"
    assert 'User "mallory" cannot patch resource "deployments"' in denied.json()["message"]
    via_kubectl = cp.kubectl(
        "patch", "deployment", name, "-p", _scale_patch(3), user=MALLORY.user, check=False
    )
    assert via_kubectl.returncode != 0
    assert "Forbidden" in via_kubectl.stderr

    # The bot's identity starts with no rights either.
    bot = cp.request("PATCH", path, user=ROLLBACK_BOT.user, data=_scale_patch(3), headers=merge)
    assert bot.status_code == 403

    cp.kubectl("patch", "deployment", name, "-p", _scale_patch(3), user=ALICE.user)
    dep = get_json(cp, "deployment", name, "--show-managed-fields")
    assert dep["spec"]["replicas"] == 3
    # managedFields records the field manager (kubectl's), not the user: the audit log does.
    managers = {(m["manager"], m["operation"]) for m in dep["metadata"]["managedFields"]}
    assert ("kubectl-patch", "Update") in managers
    patch_fields = next(
        m["fieldsV1"] for m in dep["metadata"]["managedFields"] if m["manager"] == "kubectl-patch"
    )
    assert "f:replicas" in patch_fields["f:spec"]

    events = cp.audit_events()
    alice = list(
        iter_audit(
            events,
            verb="patch",
            stage="ResponseComplete",
            **{"user.username": "alice", "objectRef.name": name, "responseStatus.code": 200},
        )
    )
    assert len(alice) == 1
    assert alice[0]["objectRef"]["resource"] == "deployments"
    assert alice[0]["requestObject"] == {"spec": {"replicas": 3}}
    mallory = list(
        iter_audit(events, verb="patch", **{"user.username": "mallory", "objectRef.name": name})
    )
    assert {e["responseStatus"]["code"] for e in mallory} == {403}


def test_rollback_bot_gets_exactly_the_rights_a_role_binding_grants(
    real_control_plane: RealControlPlane,
) -> None:
    cp = real_control_plane
    name = unique_name("cart")
    apply(cp, deployment(name, "registry.example/cart:1"))
    role = unique_name("bot-rollback")
    cp.kubectl(
        "create",
        "role",
        role,
        "-n",
        cp.namespace,
        "--verb=get,patch",
        "--resource=deployments.apps",
        f"--resource-name={name}",
    )
    cp.kubectl(
        "create",
        "rolebinding",
        role,
        "-n",
        cp.namespace,
        f"--role={role}",
        f"--user={ROLLBACK_BOT.user}",
    )
    # RBAC reads bindings from an informer: wait until the new one is seen.
    wait_until(
        lambda: can_i(cp, ROLLBACK_BOT.user, "patch", f"deployments.apps/{name}"),
        timeout=15,
        what="rollback-bot may patch its Deployment",
    )
    cp.kubectl("patch", "deployment", name, "-p", _scale_patch(1), user=ROLLBACK_BOT.user)
    # The Role names one Deployment; another one stays out of reach.
    assert not can_i(cp, ROLLBACK_BOT.user, "patch", "deployments.apps/other")
    assert not can_i(cp, ROLLBACK_BOT.user, "delete", f"deployments.apps/{name}")


def test_impersonation_is_honoured_only_with_impersonate_rights(
    real_control_plane: RealControlPlane,
) -> None:
    cp = real_control_plane
    name = unique_name("imp")
    path = f"/apis/apps/v1/namespaces/{cp.namespace}/deployments/{name}"
    merge = {"Content-Type": "application/merge-patch+json"}
    apply(cp, deployment(name, "registry.example/imp:1"))

    def patch_as_alice(replicas: int) -> Any:
        return cp.request(
            "PATCH",
            path,
            user=ROLLBACK_BOT.user,
            impersonate=ALICE.user,
            data=_scale_patch(replicas),
            headers=merge,
        )

    refused = patch_as_alice(3)
    assert refused.status_code == 403
    # v1.36 checks constrained impersonation first ("impersonate-on:user-info:<verb>"); the
    # classic impersonate verb on users, granted below, is still honoured.
    assert 'User "rollback-bot" cannot impersonate' in refused.json()["message"]

    grant = unique_name("impersonate-alice")
    cp.kubectl(
        "create",
        "clusterrole",
        grant,
        "--verb=impersonate",
        "--resource=users",
        f"--resource-name={ALICE.user}",
    )
    cp.kubectl(
        "create",
        "clusterrolebinding",
        grant,
        f"--clusterrole={grant}",
        f"--user={ROLLBACK_BOT.user}",
    )
    try:
        # RBAC reads bindings from an informer: wait until the new one is seen.
        wait_until(
            lambda: can_i(cp, ROLLBACK_BOT.user, "impersonate", f"users/{ALICE.user}"),
            timeout=15,
            what="rollback-bot may impersonate alice",
        )
        allowed = patch_as_alice(3)
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["spec"]["replicas"] == 3
        # Only alice: impersonating anyone else is still refused.
        as_mallory = cp.request("GET", path, user=ROLLBACK_BOT.user, impersonate=MALLORY.user)
        assert as_mallory.status_code == 403
        # Nor does the grant for the user alice let it add a group to her.
        escalated = cp.request(
            "GET", path, user=ROLLBACK_BOT.user, impersonate=ALICE.user,
            impersonate_group="system:masters",
        )  # fmt: skip
        assert escalated.status_code == 403

        events = list(
            iter_audit(
                cp.audit_events(),
                verb="patch",
                **{"objectRef.name": name, "responseStatus.code": 200},
            )
        )
        assert len(events) == 1
        assert events[0]["user"]["username"] == ROLLBACK_BOT.user
        assert events[0]["impersonatedUser"]["username"] == ALICE.user
    finally:
        cp.kubectl("delete", "clusterrolebinding", grant)
        cp.kubectl("delete", "clusterrole", grant)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def _listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of each TCP socket ``pid`` listens on, from /proc/net/tcp{,6}."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            addr_hex, port_hex = local.split(":")
            if len(addr_hex) == 8:
                addr = socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr_hex)[::-1])
            else:
                raw = bytes.fromhex(addr_hex)
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                addr = socket.inet_ntop(socket.AF_INET6, words)
            found.append((addr, int(port_hex, 16)))
    return found


def _listen_addresses(pid: int) -> set[str]:
    return {addr for addr, _ in _listening_sockets(pid)}


def _listen_ports(pid: int) -> set[int]:
    return {port for _, port in _listening_sockets(pid)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_and_stop_leave_no_process_or_port_behind(tmp_path: Path) -> None:
    """A second, separate control plane (the session one keeps running meanwhile)."""
    bin_dir = require_binaries()
    plane = RealControlPlane(bin_dir=bin_dir)
    with plane:
        pids = plane.pids()
        ports = dict(plane.ports)
        work_dir = plane.work_dir
        assert work_dir is not None
        assert len(pids) == 5
        assert all(_alive(p) for p in pids)
        assert _listening(ports["apiserver"])
        assert plane.request("GET", "/readyz").status_code == 200
        # Every socket any component listens on is on loopback.
        listening = {pid: _listen_addresses(pid) for pid in pids}
        assert all(listening.values()), listening
        assert {addr for addrs in listening.values() for addr in addrs} == {"127.0.0.1"}
        assert {ports[c] for c in ("etcd", "apiserver", "controller-manager", "scheduler")} <= {
            port for pid in pids for port in _listen_ports(pid)
        }
    assert not [p for p in pids if _alive(p)]
    assert not _processes_mentioning(str(work_dir))
    for component, port in ports.items():
        assert not _listening(port), f"{component} still listens on {port}"
    assert not work_dir.exists()


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGTERM, 0), (signal.SIGINT, 0), (signal.SIGKILL, -signal.SIGKILL)],
    ids=["SIGTERM", "SIGINT", "SIGKILL"],
)
def test_module_entry_point_prints_listening_and_leaves_nothing_after_a_signal(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    """The documented command; SIGKILL too, where no cleanup code runs: its components die
    with it (PR_SET_PDEATHSIG)."""
    bin_dir = require_binaries()
    kubeconfig = tmp_path / "kubeconfig"
    work_dir = tmp_path / "work"
    argv = [sys.executable, "-m", "sandbox.realk8s", "--kubeconfig-out", str(kubeconfig)]
    argv += ["--bin-dir", str(bin_dir), "--work-dir", str(work_dir)]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("LISTENING "), (line, proc.stderr.read() if proc.stderr else "")
        port = int(line.split()[1])
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{port}"
        contexts = {c["name"] for c in config["contexts"]}
        assert contexts == {"admin", "rollback-bot", "alice", "mallory"}
        nodes = subprocess.run(
            [str(bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}", "get", "nodes", "-o=name"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert nodes.stdout.strip() == f"node/{NODE_NAME}"
        # The five components (the launcher's own command line names the work dir too).
        assert len(set(_processes_mentioning(str(work_dir))) - {proc.pid}) == 5
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == status
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # A dying Go process's threads can hold its sockets a moment after /proc stops showing
    # its command line, so the port gets the same grace.
    wait_until(lambda: not _processes_mentioning(str(work_dir)), timeout=10, what="no leftovers")
    wait_until(lambda: not _listening(port), timeout=10, what=f"port {port} closed")


def test_missing_binaries_fail_with_one_line_naming_the_build_script(tmp_path: Path) -> None:
    with pytest.raises(BinariesMissing) as caught:
        RealControlPlane(bin_dir=tmp_path).start()
    message = str(caught.value)
    assert "\n" not in message
    assert ".ci/build-realk8s" in message
    assert str(tmp_path) in message
    cli = subprocess.run(
        [sys.executable, "-m", "sandbox.realk8s", "--bin-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert cli.returncode == 2
    assert cli.stdout == ""
    assert cli.stderr.count("\n") == 1 and ".ci/build-realk8s" in cli.stderr


def test_missing_binaries_skip_locally_but_fail_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLLBACK_BOT_REALK8S_BIN_DIR", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"\.ci/build-realk8s"):
        require_binaries()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true and .*\.ci/build-realk8s"):
        require_binaries()
