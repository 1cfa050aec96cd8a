"""The whole bot (``build`` + bolt + waitress, the Slack stand-in) against the REAL control plane.

``LoopbackStack`` wires the bot to the emulator; this one gives it a kubeconfig of the real
apiserver instead (``Settings.kubeconfig``, as ``serve`` reads it), so the bot connects
with that identity's own token, and the helm it runs (``HELM_BIN``) gets the same
kubeconfig on its command line. Slack is still the stand-in, driven by signed requests.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import utils

from rollback_bot.app import ServerThread, build, slack_client
from rollback_bot.config import Settings
from rollback_bot.kube.client import KubeApis
from rollback_bot.storage.migrator import migrate
from rollback_bot.web.http import create_web_app
from rollback_bot.web.slack_app import create_bolt_app
from sandbox.realk8s import RealControlPlane
from sandbox.realk8s.control_plane import CRASH_ANNOTATION
from sandbox.stack import LoopbackStack
from tests.support.backend import RealBackend

ROLE = Path(__file__).resolve().parents[2] / "deploy" / "rbac" / "role.yaml"
IMPERSONATE = ROLE.with_name("impersonate.yaml")
RBAC_GROUP = "rbac.authorization.k8s.io"
BOT = "rollback-bot"
REAL_WAIT = 90.0  # the real controllers and kwok take seconds, more on a busy machine


class RealClusterStack(LoopbackStack):
    def __init__(self, *, kubeconfig: Path, helm_bin: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kubeconfig = kubeconfig
        self.helm_bin = helm_bin

    def start(self, *, bot: bool = True) -> RealClusterStack:
        self.slack.start()  # no emulator: the cluster is the real one
        migrate(self.database_url)
        if bot:
            self.start_bot()
        return self

    def settings(self) -> Settings:
        return (
            super()
            .settings()
            .model_copy(update={"kubeconfig": str(self.kubeconfig), "helm_bin": self.helm_bin})
        )

    def start_bot(self) -> None:
        settings = self.settings()
        self.services = build(
            settings, catalog=self.catalog, clock=self._clock, slack=slack_client(settings)
        )
        web = create_web_app(self.services, create_bolt_app(self.services))
        self.services.start()
        self._server = ServerThread(web).start()

    def stop(self) -> None:
        self.stop_bot()
        self.slack.stop()
        self.http.close()


class RealKube:
    """What the e2e tests ask of ``stack.kube``, answered by the real control plane.

    Logical namespaces ("shop") are this test's fresh ones (``stack.ns``); a crashing image
    is one the stack's writes mark with the kwok crash annotation on the pod template, so it
    follows the template through every rollout and rollback as the emulator's does.
    """

    bot_user = "rollback-bot"  # the bot's token user (see RealE2EStack)

    def __init__(self, stack: RealE2EStack) -> None:
        self._stack = stack
        self.crashing: set[str] = set()

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        ns = self._stack.ns(namespace) if namespace else ""
        return self._stack.backend.get(resource, ns, name)

    def list(self, resource: str, namespace: str) -> list[dict[str, Any]]:
        return self._stack.backend.list(resource, self._stack.ns(namespace))

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        # The real controllers and kwok take seconds, more on a busy machine.
        self._stack.backend.wait_for(predicate, timeout=max(timeout, REAL_WAIT))

    def crash_image(self, image: str) -> None:
        """Releases of ``image`` crash from now on: the stack's writes of it carry the crash
        annotation, and so do the templates of scaled-down ReplicaSets that ran it, so a
        rollback to such a revision brings up pods that never become Ready."""
        self.crashing.add(image)
        self._mark_replicasets(image, "true")

    def heal_image(self, image: str) -> None:
        """Releases of ``image`` no longer crash: the annotation leaves the templates of the
        scaled-down ReplicaSets that ran it, so a rollback to such a revision is healthy."""
        self.crashing.discard(image)
        self._mark_replicasets(image, None)

    def _mark_replicasets(self, image: str, mark: str | None) -> None:
        apps = self._stack.backend.apis.apps
        for logical, ns in self._stack.namespaces.items():
            for rs in self._stack.backend.list("replicasets", ns):
                template = rs["spec"]["template"]
                if image not in [c["image"] for c in template["spec"]["containers"]]:
                    continue
                if (template["metadata"].get("annotations") or {}).get(CRASH_ANNOTATION) == mark:
                    continue
                # The emulator turns running pods too; kwok decides once per pod, so only
                # a release that runs no pod can change its mind.
                assert not rs["spec"].get("replicas"), (
                    f"{logical}/{rs['metadata']['name']} still runs {image}: change its "
                    "health only once it is rolled away from"
                )
                patch = {
                    "spec": {"template": {"metadata": {"annotations": {CRASH_ANNOTATION: mark}}}}
                }
                apps.patch_namespaced_replica_set(rs["metadata"]["name"], ns, patch)

    @property
    def audit(self) -> list[dict[str, Any]]:
        """Writes by anyone but the controllers, in the emulator's audit shape (logical
        namespaces)."""
        found = []
        for logical, ns in self._stack.namespaces.items():
            found += [{**w, "namespace": logical} for w in self._stack.backend.writes(ns)]
        return found

    def dump(self) -> Any:
        """Equal before and after iff nothing the bot touches changed: the resourceVersion
        and generation of every such object (``RealBackend.fingerprint``), read once the
        controllers stopped writing (two reads half a second apart agree), since a real
        controller keeps writing status for a while after a rollout completes."""

        def read() -> Any:
            return {
                logical: self._stack.backend.fingerprint(ns)
                for logical, ns in sorted(self._stack.namespaces.items())
            }

        last = [read()]

        def still() -> bool:
            time.sleep(0.5)
            now = read()
            same = now == last[0]
            last[0] = now
            return same

        self.wait_for(still)
        return last[0]

    def write_kubeconfig(self, path: Path | str) -> str:
        """The administrator's kubeconfig (pass ``-n stack.ns(...)`` to kubectl)."""
        return str(self._stack.plane.write_kubeconfig(path))

    def template_patch(self, image: str) -> dict[str, Any]:
        """The pod-template metadata a release of ``image`` carries: crashing or not."""
        mark = "true" if image in self.crashing else None
        return {"annotations": {CRASH_ANNOTATION: mark}}


class RealE2EStack(RealClusterStack):
    """The e2e suite's stack on the real control plane.

    The bot runs as ``rollback-bot`` with the shipped least-privilege Role
    (``deploy/rbac/role.yaml``) bound in each of its namespaces. Every namespace the catalog
    names, and any other a test deploys to, is a fresh ``<name>-<hex>`` on the session's
    control plane (deleted afterwards), so tests cannot see each other's objects;
    ``ns("shop")`` answers it. The emulator-shaped calls (``deploy``, ``set_image``,
    ``deployment``, ``wait_available``, ``kube.get``, ``kube.crash_image``, ...) take the
    logical names.
    """

    def __init__(
        self, *, plane: RealControlPlane, work_dir: Path, catalog: dict[str, Any], **kw: Any
    ) -> None:
        kw.pop("ready_delay", None)  # kwok's stages set the pace
        self.plane = plane
        self.backend = RealBackend(plane)
        self.namespaces: dict[str, str] = {}
        self._cluster_rbac: list[str] = []
        raw = copy.deepcopy(catalog)
        for service in raw.get("services", []):
            service["namespace"] = self.ns(service.get("namespace") or "default")
        self._let_mapped_people_act(raw)
        super().__init__(
            kubeconfig=plane.write_kubeconfig(work_dir / "bot.kubeconfig", current=BOT),
            helm_bin=str(plane.binary("helm")),
            catalog=raw,
            **kw,
        )
        self.kube = RealKube(self)  # type: ignore[assignment]

    def ns(self, logical: str) -> str:
        if logical not in self.namespaces:
            name = self.backend.namespace(logical)
            bind_shipped_role(self.backend, name)
            self.namespaces[logical] = name
        return self.namespaces[logical]

    def _let_mapped_people_act(self, catalog: dict[str, Any]) -> None:
        """Where the catalog maps Slack users to Kubernetes identities: the bot may
        impersonate (``deploy/rbac/impersonate.yaml``, under a name of this test's, removed
        at the end), and each mapped person has the bot's Role in the service's namespace,
        so their own RBAC lets the change through."""
        rbac = k8s.RbacAuthorizationV1Api(self.backend.apis.api_client)
        mapped = False
        for service in catalog.get("services", []):
            for i, who in enumerate((service.get("impersonate") or {}).values()):
                mapped = True
                rbac.create_namespaced_role_binding(
                    service["namespace"],
                    {  # type: ignore[arg-type]
                        "metadata": {"name": f"{BOT}-person-{i}"},
                        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": BOT},
                        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": who["user"]}],
                    },
                )
        if not mapped:
            return
        docs = {d["kind"]: d for d in yaml.safe_load_all(IMPERSONATE.read_text()) if d}
        name = f"{BOT}-impersonate-{uuid.uuid4().hex[:8]}"
        role = copy.deepcopy(docs["ClusterRole"])
        role["metadata"]["name"] = name
        rbac.create_cluster_role(role)
        self._cluster_rbac.append(name)
        rbac.create_cluster_role_binding(
            {  # type: ignore[arg-type]
                "metadata": {"name": name},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
                "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": BOT}],
            }
        )

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            rbac = k8s.RbacAuthorizationV1Api(self.backend.apis.api_client)
            for name in self._cluster_rbac:
                rbac.delete_cluster_role_binding(name)
                rbac.delete_cluster_role(name)
            self.backend.close()

    def apis(self) -> KubeApis:
        return self.backend.apis

    def create(self, namespace: str, obj: dict[str, Any]) -> None:
        obj = copy.deepcopy(obj)
        if obj.get("kind") == "Deployment":
            template = obj["spec"]["template"]
            image = template["spec"]["containers"][0]["image"]
            if image in self.kube.crashing:
                template["metadata"].setdefault("annotations", {})[CRASH_ANNOTATION] = "true"
        utils.create_from_dict(self.apis().api_client, obj, namespace=self.ns(namespace))

    def deploy(self, namespace: str, manifest: dict[str, Any]) -> None:
        self.create(namespace, manifest)

    def set_image(self, namespace: str, name: str, image: str) -> None:
        patch = {
            "spec": {
                "template": {
                    "metadata": self.kube.template_patch(image),
                    "spec": {"containers": [{"name": "app", "image": image}]},
                }
            }
        }
        self.apis().apps.patch_namespaced_deployment(name, self.ns(namespace), patch)

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        found = self.kube.get("deployments", namespace, name)
        assert found is not None, f"no deployment {namespace}/{name}"
        return found

    def wait_available(self, namespace: str, name: str, timeout: float = 10) -> None:
        super().wait_available(namespace, name, max(timeout, REAL_WAIT))


def bind_shipped_role(backend: RealBackend, namespace: str) -> None:
    """``deploy/rbac/role.yaml`` in ``namespace``, bound to the bot's token user as the
    shipped RoleBinding binds it to the bot's ServiceAccount."""
    docs = {d["kind"]: d for d in yaml.safe_load_all(ROLE.read_text()) if d}
    rbac = k8s.RbacAuthorizationV1Api(backend.apis.api_client)
    rbac.create_namespaced_role(namespace, docs["Role"])
    binding = {
        **docs["RoleBinding"],
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": BOT}],
    }
    rbac.create_namespaced_role_binding(namespace, binding)
