"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok, started from binaries that ``.ci/build-realk8s`` built.

Why real binaries next to the emulator in ``sandbox/kube``: RBAC, impersonation, admission,
validation, server-side apply and the deployment controller's revision bookkeeping are
upstream's own code here, so a test that passes against this cannot be passing against our
idea of Kubernetes. kwok stands in for kubelets: it marks one fake Node Ready and moves pods
through their phases (``stages.yaml``), including the "crash" marker for bad releases.

Everything listens on 127.0.0.1 on ports the OS handed out, keeps its state in a temporary
directory, and runs in its own process group, so :meth:`RealControlPlane.stop` can end each
process with everything it spawned and leave no process or port behind.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
import urllib3
import yaml

from .binaries import default_bin_dir, require_binaries, versions

STAGES_FILE = Path(__file__).with_name("stages.yaml")

# The namespace tests work in; alice may edit Deployments here and nowhere else.
TEST_NAMESPACE = "rollback-test"
NODE_NAME = "kwok-node-0"
CRASH_ANNOTATION = "sandbox.rollback-bot/crash"
CRASH_IMAGE_MARKER = "crash"


@dataclass(frozen=True)
class Identity:
    """A user in the apiserver's static token file."""

    user: str
    token: str
    groups: tuple[str, ...] = ()


# Test identities. The tokens are fixed on purpose: they only ever open a throwaway apiserver
# on loopback, and fixed values make a failing test's curl line reproducible.
ADMIN = Identity("admin", "realk8s-admin-token", ("system:masters",))
# The bot's own identity: authenticated, no RBAC rights at all (only the discovery and
# self-review rights every authenticated user has), so each test grants exactly what it needs.
ROLLBACK_BOT = Identity("rollback-bot", "realk8s-rollback-bot-token", ("rollback-bot",))
# A person who may edit Deployments in TEST_NAMESPACE (see _bootstrap_rbac).
ALICE = Identity("alice", "realk8s-alice-token", ("developers",))
# A person with no rights.
MALLORY = Identity("mallory", "realk8s-mallory-token")
USERS: tuple[Identity, ...] = (ADMIN, ROLLBACK_BOT, ALICE, MALLORY)

# The components' own identities, so the audit log tells the controllers' writes apart from a
# test's. The scheduler's bootstrap RBAC role is enough for it; the controller-manager runs
# every controller under one credential (no per-controller service accounts), and kwok
# writes node and pod status, so both are in system:masters.
CONTROLLER_MANAGER = Identity(
    "system:kube-controller-manager", "realk8s-kcm-token", ("system:masters",)
)
SCHEDULER = Identity("system:kube-scheduler", "realk8s-scheduler-token")
KWOK = Identity("kwok", "realk8s-kwok-token", ("system:masters",))
COMPONENTS: tuple[Identity, ...] = (CONTROLLER_MANAGER, SCHEDULER, KWOK)

CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    # Jobs run to completion (kwok's pod-complete stage): the chart's migration hook.
    "job-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
)

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
# One event per request, when the response is complete.
omitStages: [RequestReceived]
rules:
  # Probes and the components' own reads would drown what tests look for.
  - level: None
    nonResourceURLs: [/healthz*, /readyz*, /livez*, /version, /openapi*, /api, /apis, /metrics]
  - level: None
    users: [system:kube-controller-manager, system:kube-scheduler, kwok, system:apiserver]
    verbs: [get, list, watch]
  - level: None
    resources: [{group: coordination.k8s.io, resources: [leases]}]
  # Changes to Deployments keep the request body: who changed what, to what.
  - level: Request
    resources: [{group: apps, resources: [deployments, deployments/scale]}]
    verbs: [create, update, patch, delete]
  # Everything else: user, groups, impersonated user, verb, object, response code.
  - level: Metadata
"""


class ControlPlaneError(RuntimeError):
    """A component did not start or did not become ready; the message carries its log tail."""


def _free_ports(count: int) -> list[int]:
    """Ports the OS hands out on 127.0.0.1, all held open until every one is chosen so none
    repeats (another process could still take one before its component binds it)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the parent dies, so a killed test run leaves
    no control plane behind (PR_SET_PDEATHSIG fires when the starting thread ends)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class _Process:
    """One component: its own session and process group, output to a log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, *, die_with_parent: bool):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        log = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed right after
        try:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if die_with_parent else None,
            )
        finally:
            log.close()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after ``timeout``."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)
        # The group may outlive its leader (a child it spawned); kill whatever still carries it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)


class RealControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on loopback.

    ``with RealControlPlane() as cp:`` starts everything and waits until it is ready (apiserver
    ``/readyz``, controller-manager and scheduler ``/healthz``, the kwok Node Ready); leaving
    the block stops every process. ``cp.kubeconfig_path`` has one context per test identity
    (``admin``, ``rollback-bot``, ``alice``, ``mallory``), the admin's current.
    """

    def __init__(
        self,
        *,
        bin_dir: Path | str | None = None,
        work_dir: Path | str | None = None,
        namespace: str = TEST_NAMESPACE,
        ready_timeout: float = 90.0,
        die_with_parent: bool = True,
        log: Callable[[str], None] | None = None,
        apiserver_args: tuple[str, ...] = (),
    ) -> None:
        self.apiserver_args = tuple(apiserver_args)  # appended to kube-apiserver's flags
        self.bin_dir = Path(bin_dir) if bin_dir else default_bin_dir()
        self.namespace = namespace
        self.ready_timeout = ready_timeout
        self.die_with_parent = die_with_parent
        self._log = log or (lambda _msg: None)
        self._given_work_dir = Path(work_dir) if work_dir else None
        self.work_dir: Path | None = None
        self.versions = versions()
        self.processes: list[_Process] = []
        self.ports: dict[str, int] = {}
        self.startup_seconds: float | None = None
        self._http = requests.Session()

    # -- what tests use ----------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.ports["apiserver"]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def admin_token(self) -> str:
        return ADMIN.token

    @property
    def tokens(self) -> dict[str, str]:
        """Bearer token of each test identity, by user name."""
        return {u.user: u.token for u in USERS}

    def token(self, user: str) -> str:
        return self.tokens[user]

    @property
    def kubeconfig_path(self) -> Path:
        return self._dir / "kubeconfig"

    @property
    def ca_path(self) -> Path:
        """The apiserver's self-signed serving certificate and its CA (it writes both)."""
        return self._dir / "pki" / "apiserver.crt"

    @property
    def audit_log_path(self) -> Path:
        return self._dir / "audit.log"

    def binary(self, name: str) -> Path:
        return self.bin_dir / name

    def request(
        self,
        method: str,
        path: str,
        *,
        user: str = "admin",
        token: str | None = None,
        impersonate: str | None = None,
        impersonate_group: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One HTTPS request to the apiserver as ``user`` (or with ``token``), optionally with
        ``Impersonate-User``/``Impersonate-Group`` headers (one group: requests sends one
        value per header name, and the apiserver does not split a comma-joined one)."""
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {token or self.token(user)}"
        if impersonate:
            headers["Impersonate-User"] = impersonate
        if impersonate_group:
            headers["Impersonate-Group"] = impersonate_group
        kwargs.setdefault("timeout", 30)
        return self._http.request(
            method, self.url + path, headers=headers, verify=str(self.ca_path), **kwargs
        )

    def kubectl(
        self,
        *args: str,
        user: str = "admin",
        check: bool = True,
        timeout: float = 120,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl (same version as the server) as ``user``."""
        argv = [
            str(self.binary("kubectl")),
            f"--kubeconfig={self.kubeconfig_path}",
            f"--context={user}",
            *args,
        ]
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, input=input, check=False
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, argv, result.stdout, result.stderr
            )
        return result

    def audit_events(self) -> list[dict[str, Any]]:
        """Every audit event written so far (the log backend blocks, so a request's event is
        on disk before its response arrives)."""
        try:
            lines = self.audit_log_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> RealControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> RealControlPlane:
        if self.processes:
            raise RuntimeError("control plane already started")
        require_binaries(self.bin_dir)
        started = time.monotonic()
        if self._given_work_dir:
            self._given_work_dir.mkdir(parents=True, exist_ok=True)
            self.work_dir = self._given_work_dir
        else:
            self.work_dir = Path(tempfile.mkdtemp(prefix="realk8s-"))
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        self._log(
            f"real control plane (Kubernetes {self.versions['KUBERNETES_VERSION']}) ready at "
            f"{self.url} in {self.startup_seconds:.1f}s; work dir {self.work_dir}"
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every component, newest first, then remove the temporary work directory."""
        for proc in reversed(self.processes):
            proc.stop(timeout)
        self.processes = []
        self._http.close()
        if self.work_dir and not self._given_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        self.work_dir = None

    # -- start-up ----------------------------------------------------------------------
    @property
    def _dir(self) -> Path:
        if self.work_dir is None:
            raise RuntimeError("control plane not started")
        return self.work_dir

    def _spawn(self, name: str, argv: list[str]) -> _Process:
        proc = _Process(name, argv, self._dir / f"{name}.log", die_with_parent=self.die_with_parent)
        self.processes.append(proc)
        return proc

    def _start_all(self) -> None:
        d = self._dir
        names = ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok")
        self.ports = dict(zip(names, _free_ports(len(names)), strict=True))
        (d / "pki").mkdir()
        self._write_files()

        etcd = self._spawn("etcd", self._etcd_argv())
        self._wait(etcd, "etcd /health", self._etcd_healthy)

        apiserver = self._spawn("kube-apiserver", self._apiserver_argv())
        self._wait(apiserver, "kube-apiserver /readyz", self._apiserver_ready)
        self._write_kubeconfigs()
        self._bootstrap()

        kcm = self._spawn("kube-controller-manager", self._controller_manager_argv())
        sched = self._spawn("kube-scheduler", self._scheduler_argv())
        kwok = self._spawn("kwok", self._kwok_argv())
        self._wait(kcm, "kube-controller-manager /healthz", self._healthz("controller-manager"))
        self._wait(sched, "kube-scheduler /healthz", self._healthz("scheduler"))
        self._create_node()
        self._wait(kwok, f"node {NODE_NAME} Ready", self._node_ready)

    def _wait(self, proc: _Process, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if not proc.alive():
                raise ControlPlaneError(
                    f"{proc.name} exited with status {proc.popen.returncode} before {what}; "
                    f"last lines of {proc.log_path}:\n{proc.log_tail()}"
                )
            with contextlib.suppress(requests.RequestException, OSError):
                if ready():
                    return
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"timed out after {self.ready_timeout:.0f}s waiting for {what}; "
                    f"last lines of {proc.log_path}:\n{proc.log_tail()}"
                )
            time.sleep(0.2)

    def _write_files(self) -> None:
        d = self._dir
        rows = [
            f'{u.token},{u.user},{u.user},"{",".join(u.groups)}"'
            if u.groups
            else f"{u.token},{u.user},{u.user}"
            for u in (*USERS, *COMPONENTS)
        ]
        (d / "tokens.csv").write_text("\n".join(rows) + "\n")
        (d / "audit-policy.yaml").write_text(AUDIT_POLICY)
        subprocess.run(
            ["openssl", "genrsa", "-out", str(d / "sa.key"), "2048"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["openssl", "rsa", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub")],
            check=True,
            capture_output=True,
        )

    def _etcd_argv(self) -> list[str]:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        return [
            str(self.binary("etcd")),
            "--name=default",
            f"--data-dir={self._dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            # No metrics listener of its own; the client port serves /health.
            "--listen-metrics-urls=",
            # Throwaway data: fsync would only make tests slower.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]

    def _etcd_healthy(self) -> bool:
        r = self._http.get(f"http://127.0.0.1:{self.ports['etcd']}/health", timeout=2)
        return r.status_code == 200 and r.json().get("health") == "true"

    def _apiserver_argv(self) -> list[str]:
        d = self._dir
        return [
            str(self.binary("kube-apiserver")),
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={d / 'pki'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={d / 'sa.pub'}",
            f"--service-account-signing-key-file={d / 'sa.key'}",
            "--authorization-mode=RBAC",
            f"--token-auth-file={d / 'tokens.csv'}",
            # ServiceAccount: no token controller and no kubelet, so pods mount no token.
            # TaintNodesByCondition: it taints every new Node not-ready, and lifting that taint
            # is the node-lifecycle controller's job, which does not run here (it would also
            # evict pods when kwok's heartbeats lag on a loaded machine).
            "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
            # The "kubernetes" Service's endpoints would point at 127.0.0.1; nothing needs them.
            "--endpoint-reconciler-type=none",
            f"--audit-policy-file={d / 'audit-policy.yaml'}",
            f"--audit-log-path={d / 'audit.log'}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
            "--profiling=false",
            *self.apiserver_args,
        ]

    def _apiserver_ready(self) -> bool:
        if not self.ca_path.exists():
            return False
        r = self.request("GET", "/readyz", timeout=5)
        return r.status_code == 200

    def _kubeconfig(self, users: tuple[Identity, ...], current: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "realk8s",
                    # Embedded, so a written kubeconfig stands alone.
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": base64.b64encode(
                            self.ca_path.read_bytes()
                        ).decode(),
                    },
                }
            ],
            "users": [{"name": u.user, "user": {"token": u.token}} for u in users],
            "contexts": [
                {
                    "name": u.user,
                    "context": {
                        "cluster": "realk8s",
                        "user": u.user,
                        "namespace": "default" if u is ADMIN else self.namespace,
                    },
                }
                for u in users
            ],
            "current-context": current,
        }

    def _write_kubeconfigs(self) -> None:
        self.write_kubeconfig(self.kubeconfig_path)
        for comp in COMPONENTS:
            path = self._component_kubeconfig(comp)
            path.write_text(yaml.safe_dump(self._kubeconfig((comp,), comp.user)))

    def write_kubeconfig(self, path: Path | str, *, current: str = "admin") -> Path:
        """A kubeconfig with one context per test identity (see ``tokens``)."""
        path = Path(path)
        path.write_text(yaml.safe_dump(self._kubeconfig(USERS, current), sort_keys=False))
        path.chmod(0o600)
        return path

    def _component_kubeconfig(self, comp: Identity) -> Path:
        return self._dir / f"{comp.user.rsplit(':', 1)[-1]}.kubeconfig"

    def _bootstrap(self) -> None:
        """The test namespace and alice's rights, created as the admin."""
        self._apply(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
        )
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{self.namespace}"
        self._apply(
            f"{rbac}/roles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "deployment-editor", "namespace": self.namespace},
                "rules": [
                    {
                        "apiGroups": ["apps"],
                        "resources": ["deployments", "deployments/scale"],
                        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                    },
                    # kubectl rollout history/undo read the ReplicaSets that hold revisions.
                    {
                        "apiGroups": ["apps"],
                        "resources": ["replicasets"],
                        "verbs": ["get", "list", "watch"],
                    },
                    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                ],
            },
        )
        self._apply(
            f"{rbac}/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "alice-deployment-editor", "namespace": self.namespace},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "deployment-editor",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": ALICE.user}
                ],
            },
        )

    def _apply(self, collection: str, body: dict[str, Any]) -> None:
        r = self.request("POST", collection, json=body)
        if r.status_code not in (200, 201, 409):
            raise ControlPlaneError(f"POST {collection} answered {r.status_code}: {r.text}")

    def _controller_manager_argv(self) -> list[str]:
        kubeconfig = str(self._component_kubeconfig(CONTROLLER_MANAGER))
        return [
            str(self.binary("kube-controller-manager")),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['controller-manager']}",
            f"--controllers={','.join(CONTROLLERS)}",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
            # Tests wait on the controllers; their default pace is for big clusters.
            "--concurrent-deployment-syncs=5",
        ]

    def _scheduler_argv(self) -> list[str]:
        kubeconfig = str(self._component_kubeconfig(SCHEDULER))
        return [
            str(self.binary("kube-scheduler")),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['scheduler']}",
        ]

    def _healthz(self, component: str) -> Callable[[], bool]:
        def check() -> bool:
            # Their serving certificates are self-signed in memory: nothing to verify against.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                r = self._http.get(
                    f"https://127.0.0.1:{self.ports[component]}/healthz", verify=False, timeout=2
                )
            return r.status_code == 200

        return check

    def _kwok_argv(self) -> list[str]:
        return [
            str(self.binary("kwok")),
            f"--kubeconfig={self._component_kubeconfig(KWOK)}",
            f"--config={STAGES_FILE}",
            "--manage-all-nodes=true",
            "--node-ip=127.0.0.1",
            "--cidr=10.0.1.0/24",
            f"--server-address=127.0.0.1:{self.ports['kwok']}",
        ]

    def _create_node(self) -> None:
        self._apply(
            "/api/v1/nodes",
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": NODE_NAME,
                    "annotations": {"kwok.x-k8s.io/node": "fake"},
                    "labels": {"type": "kwok", "kubernetes.io/hostname": NODE_NAME},
                },
            },
        )

    def _node_ready(self) -> bool:
        r = self.request("GET", f"/api/v1/nodes/{NODE_NAME}", timeout=5)
        if r.status_code != 200:
            return False
        conditions = r.json().get("status", {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait_until(
    check: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.25, what: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what or check!r}: {last!r}")


def iter_audit(events: list[dict[str, Any]], **match: Any) -> Iterator[dict[str, Any]]:
    """Audit events whose dotted keys equal the given values, e.g.
    ``iter_audit(events, verb="patch", **{"user.username": "alice"})``."""
    for event in events:
        ok = True
        for dotted, want in match.items():
            value: Any = event
            for part in dotted.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value != want:
                ok = False
                break
        if ok:
            yield event
