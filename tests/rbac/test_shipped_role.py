"""The Role we ship (deploy/rbac/) against the real apiserver's RBAC, and impersonation.

The bot runs with the ``rollback-bot`` identity's own token, bound to exactly the rules of
``deploy/rbac/role.yaml`` in the test's namespace: instant, blue-green and gradual rollbacks
pass; with any one verb of the Role taken away, the scenario that needs it fails with
"Kubernetes refused ..." naming the verb, the resource and the identity (never a traceback).
A Slack user mapped to a Kubernetes user is impersonated: one without rights is refused by
the API with that same kind of message and nothing changes; one with rights makes the change,
and the audit log names them.

These run on the real control plane only: the emulator has no authorization at all.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from rollback_bot.catalog import Service
from rollback_bot.executors.bluegreen import BlueGreenExecutor
from rollback_bot.executors.gradual import CANARY, CANARY_WEIGHT, GradualExecutor
from rollback_bot.executors.instant import InstantExecutor
from rollback_bot.executors.workload import WorkloadExecutor
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.model import Actor, ExecutionError
from sandbox.realk8s import RealControlPlane, iter_audit
from sandbox.stack import deployment_manifest
from tests.executors.conftest import Cluster, MemorySnapshotStore, create, make_service, poll
from tests.executors.test_workloads import Workloads
from tests.executors.test_workloads import service as workload_service
from tests.support.backend import RealBackend, client_for

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "deploy" / "rbac" / "role.yaml"
IMPERSONATE = ROOT / "deploy" / "rbac" / "impersonate.yaml"
BOT = "rollback-bot"
RBAC_GROUP = "rbac.authorization.k8s.io"


def _documents(path: Path) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(path.read_text()) if d}


def shipped_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = _documents(ROLE)["Role"]["rules"]
    return rules


def without(rules: list[dict[str, Any]], resource: str, verb: str) -> list[dict[str, Any]]:
    """The rules with one verb on one resource taken away."""
    kept = []
    for rule in copy.deepcopy(rules):
        if resource in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
        if rule["verbs"]:
            kept.append(rule)
    return kept


@pytest.fixture
def real(real_control_plane: RealControlPlane) -> Iterator[RealBackend]:
    backend = RealBackend(real_control_plane)
    yield backend
    backend.close()


@pytest.fixture
def ns(real: RealBackend) -> str:
    return real.namespace("shop")


@pytest.fixture
def rbac(real: RealBackend) -> k8s.RbacAuthorizationV1Api:
    return k8s.RbacAuthorizationV1Api(real.apis.api_client)


def bind_bot(rbac: k8s.RbacAuthorizationV1Api, ns: str, rules: list[dict[str, Any]]) -> None:
    """The shipped Role (or ``rules``) in ``ns``, bound to the bot's user as the shipped
    RoleBinding binds it to the bot's ServiceAccount."""
    role = _documents(ROLE)["Role"]
    rbac.create_namespaced_role(ns, {**role, "rules": rules})
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": BOT},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": BOT},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": BOT}],
        },
    )


@pytest.fixture
def bot(real_control_plane: RealControlPlane) -> Iterator[KubeApis]:
    """The bot's APIs with its own token: only what a test binds to it."""
    client = client_for(real_control_plane, BOT)
    yield KubeApis(client)
    client.close()


@pytest.fixture
def may_impersonate(rbac: k8s.RbacAuthorizationV1Api) -> Iterator[None]:
    """deploy/rbac/impersonate.yaml, bound to the bot's user (cluster-wide, so removed after)."""
    docs = _documents(IMPERSONATE)
    rbac.create_cluster_role(docs["ClusterRole"])
    rbac.create_cluster_role_binding(
        {
            **docs["ClusterRoleBinding"],
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": BOT}],
        }
    )
    yield
    rbac.delete_cluster_role_binding(docs["ClusterRoleBinding"]["metadata"]["name"])
    rbac.delete_cluster_role(docs["ClusterRole"]["metadata"]["name"])


# -- scenarios: arrange as the admin, roll back as the bot ------------------------------------


def _release(cluster: Cluster, image: str, revision: int) -> None:
    cluster.roll("checkout", image, revision=revision)


def instant(real: RealBackend, ns: str, bot: KubeApis, actor: Actor) -> Callable[[], Any]:
    """checkout at v1, v2, v3; returns the rollback to v2 (plan, apply, verify)."""
    cluster = Cluster(real, ns)
    cluster.create("checkout", "shop/checkout:v1")
    _release(cluster, "shop/checkout:v2", 2)
    _release(cluster, "shop/checkout:v3", 3)
    cluster.quiet()

    def run() -> Any:
        ex = InstantExecutor(bot, MemorySnapshotStore(), backoff_seconds=0.0)
        service = make_service(namespace=ns)
        plan = ex.plan(service)
        ex.apply_step(service, plan, step=0, actor=actor, drill=False)
        poll(lambda: ex.verify(service, plan, drill=False).done)
        return ex.verify(service, plan, drill=False)

    return run


def instant_with_configmap(
    real: RealBackend, ns: str, bot: KubeApis, actor: Actor, *, deleted: bool = False
) -> Callable[[], Any]:
    """A rollback that restores the ConfigMap its target ran with (recreates it if deleted)."""
    cluster = Cluster(real, ns)
    cluster.configmap("checkout-config", {"MODE": "safe"})
    cluster.create("checkout", "shop/checkout:v1", configmap="checkout-config")
    store = MemorySnapshotStore()
    admin = InstantExecutor(real.apis, store, backoff_seconds=0.0)
    admin.snapshot(make_service(namespace=ns))  # the checkpoint, taken by a past run
    cluster.configmap("checkout-config", {"MODE": "fast"})
    _release(cluster, "shop/checkout:v2", 2)
    if deleted:
        real.apis.core.delete_namespaced_config_map("checkout-config", ns)
    cluster.quiet()

    def run() -> Any:
        ex = InstantExecutor(bot, store, backoff_seconds=0.0)
        service = make_service(namespace=ns)
        plan = ex.plan(service)
        ex.apply_step(service, plan, step=0, actor=actor, drill=False)
        stored = real.get("configmaps", ns, "checkout-config")
        assert stored is not None and stored["data"] == {"MODE": "safe"}
        poll(lambda: ex.verify(service, plan, drill=False).done)
        return ex.verify(service, plan, drill=False)

    return run


def blue_green(real: RealBackend, ns: str, bot: KubeApis, actor: Actor) -> Callable[[], Any]:
    for slot, image in (("blue", "shop/checkout:v2"), ("green", "shop/checkout:v1")):
        body = deployment_manifest(
            f"checkout-{slot}", image, replicas=1, labels={"app": "checkout", "slot": slot}
        )
        create(real.apis, body, ns)
    create(
        real.apis,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "checkout"},
            "spec": {"selector": {"app": "checkout", "slot": "blue"}, "ports": [{"port": 80}]},
        },
        ns,
    )
    Cluster(real, ns).quiet()
    service = Service.model_validate(
        {
            "name": "checkout",
            "namespace": ns,
            "deployment": "checkout-blue",
            "channel": "C0ALERTS",
            "match": {"service": "checkout"},
            "strategy": "blue-green",
            "blue_green": {
                "service": "checkout",
                "slots": {"blue": "checkout-blue", "green": "checkout-green"},
            },
        }
    )

    def run() -> Any:
        ex = BlueGreenExecutor(bot)
        plan = ex.plan(service)
        ex.apply_step(service, plan, step=0, actor=actor, drill=False)
        svc = real.get("services", ns, "checkout") or {}
        assert svc["spec"]["selector"]["slot"] == "green"
        poll(lambda: ex.verify(service, plan, drill=False).done)
        return ex.verify(service, plan, drill=False)

    return run


def gradual(
    real: RealBackend, ns: str, bot: KubeApis, actor: Actor, *, driver: str = "replicas"
) -> Callable[[], Any]:
    for name, track, replicas, image in (
        ("checkout", "stable", 1, "shop/checkout:v1"),
        ("checkout-canary", "canary", 1, "shop/checkout:v2"),
    ):
        body = deployment_manifest(
            name, image, replicas=replicas, labels={"app": "checkout", "track": track}
        )
        create(real.apis, body, ns)
    extra: dict[str, Any] = {}
    if driver == "ingress":
        extra = {"driver": "ingress", "canary_ingress": "checkout-canary"}
        create(
            real.apis,
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {
                    "name": "checkout-canary",
                    "annotations": {CANARY: "true", CANARY_WEIGHT: "100"},
                },
                "spec": {"defaultBackend": {"service": {"name": "c", "port": {"number": 80}}}},
            },
            ns,
        )
    Cluster(real, ns).quiet()
    service = Service.model_validate(
        {
            "name": "checkout",
            "namespace": ns,
            "deployment": "checkout",
            "channel": "C0ALERTS",
            "match": {"service": "checkout"},
            "strategy": "gradual",
            "gradual": {"stable": "checkout", "canary": "checkout-canary", **extra},
        }
    )

    def run() -> Any:
        ex = GradualExecutor(bot)
        plan = ex.plan(service)
        for step in range(len(plan.steps)):
            ex.apply_step(service, plan, step=step, actor=actor, drill=False)
        poll(lambda: ex.verify(service, plan, drill=False).done)
        return ex.verify(service, plan, drill=False)

    return run


def workload(kind: str) -> Callable[..., Callable[[], Any]]:
    """db at v1, v2, v3 as a StatefulSet or DaemonSet; returns the rollback to v2."""

    def arrange(real: RealBackend, ns: str, bot: KubeApis, actor: Actor) -> Callable[[], Any]:
        Workloads(real, kind).three_releases(ns)

        def run() -> Any:
            ex = WorkloadExecutor(bot, MemorySnapshotStore(), kind, backoff_seconds=0.0)
            service = workload_service(kind, ns)
            plan = ex.plan(service)
            ex.apply_step(service, plan, step=0, actor=actor, drill=False)
            poll(lambda: ex.verify(service, plan, drill=False).done)
            return ex.verify(service, plan, drill=False)

        return run

    return arrange


SCENARIOS: dict[str, Callable[..., Callable[[], Any]]] = {
    "instant": instant,
    "instant-restoring-a-configmap": instant_with_configmap,
    "instant-recreating-a-configmap": lambda *a: instant_with_configmap(*a, deleted=True),
    "blue-green": blue_green,
    "gradual-replicas": gradual,
    "gradual-ingress": lambda *a: gradual(*a, driver="ingress"),
    "statefulset": workload("statefulset"),
    "daemonset": workload("daemonset"),
}
SLACK_ONLY = Actor("U0BOB")


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_shipped_role_is_enough(
    real: RealBackend,
    ns: str,
    bot: KubeApis,
    rbac: k8s.RbacAuthorizationV1Api,
    scenario: str,
) -> None:
    bind_bot(rbac, ns, shipped_rules())
    run = SCENARIOS[scenario](real, ns, bot, SLACK_ONLY)
    verdict = run()
    assert verdict.ok, verdict.detail


# Each verb of the Role, with the scenario that needs it. list/watch on deployments are the
# manual-change watcher's (incidents/watcher.py), which no executor scenario exercises.
NEEDED_BY = [
    ("deployments", "get", "instant"),
    ("deployments", "patch", "instant"),
    ("deployments", "patch", "gradual-replicas"),
    ("replicasets", "list", "instant"),
    ("configmaps", "get", "instant-restoring-a-configmap"),
    ("configmaps", "patch", "instant-restoring-a-configmap"),
    ("configmaps", "create", "instant-recreating-a-configmap"),
    ("services", "get", "blue-green"),
    ("services", "patch", "blue-green"),
    ("ingresses", "get", "gradual-ingress"),
    ("ingresses", "patch", "gradual-ingress"),
    ("statefulsets", "get", "statefulset"),
    ("statefulsets", "patch", "statefulset"),
    ("daemonsets", "get", "daemonset"),
    ("daemonsets", "patch", "daemonset"),
    ("controllerrevisions", "list", "statefulset"),
]


def test_every_verb_of_the_role_is_named_by_a_scenario_or_the_watcher() -> None:
    shipped = {(r, v) for rule in shipped_rules() for r in rule["resources"] for v in rule["verbs"]}
    covered = {(r, v) for r, v, _ in NEEDED_BY} | {
        ("deployments", "list"),
        ("deployments", "watch"),
        # kube/events.py: best effort (a refusal is logged, the rollback goes on), shown by
        # tests/e2e/test_truth.py's `kubectl describe` on the real plane.
        ("events", "create"),
    }
    assert shipped == covered


@pytest.mark.parametrize(
    ("resource", "verb", "scenario"), NEEDED_BY, ids=[f"{r}-{v}-{s}" for r, v, s in NEEDED_BY]
)
def test_without_any_one_verb_the_rollback_is_refused_clearly(
    real: RealBackend,
    ns: str,
    bot: KubeApis,
    rbac: k8s.RbacAuthorizationV1Api,
    resource: str,
    verb: str,
    scenario: str,
) -> None:
    bind_bot(rbac, ns, without(shipped_rules(), resource, verb))
    run = SCENARIOS[scenario](real, ns, bot, SLACK_ONLY)
    with pytest.raises(ExecutionError) as refused:
        run()
    message = str(refused.value)
    assert "Kubernetes refused" in message, message
    assert f'user "{BOT}" may not {verb} {resource}' in message, message
    assert f"in namespace {ns}" in message
    assert "Traceback" not in message


def test_a_mapped_person_without_rights_is_refused_by_the_api_and_nothing_changes(
    real: RealBackend,
    ns: str,
    bot: KubeApis,
    rbac: k8s.RbacAuthorizationV1Api,
    may_impersonate: None,
) -> None:
    bind_bot(rbac, ns, shipped_rules())
    run = instant(real, ns, bot, Actor("U0MALLORY", kube_user="mallory"))
    before = real.fingerprint(ns)
    with pytest.raises(ExecutionError) as refused:
        run()
    message = str(refused.value)
    assert message.startswith("Kubernetes refused"), message
    assert f'user "mallory" may not patch deployments.apps in namespace {ns}' in message
    assert not refused.value.retryable
    assert real.fingerprint(ns) == before
    denied = list(
        iter_audit(
            real.plane.audit_events(),
            verb="patch",
            **{"objectRef.namespace": ns, "impersonatedUser.username": "mallory"},
        )
    )
    assert [e["responseStatus"]["code"] for e in denied] == [403]
    assert denied[0]["user"]["username"] == BOT


def test_a_mapped_person_with_rights_makes_the_change_as_themselves(
    real: RealBackend,
    ns: str,
    bot: KubeApis,
    rbac: k8s.RbacAuthorizationV1Api,
    may_impersonate: None,
) -> None:
    bind_bot(rbac, ns, shipped_rules())
    real.grant(
        ns, "alice", [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}]
    )
    run = instant(real, ns, bot, Actor("U0ALICE", kube_user="alice"))
    assert run().ok
    patches = list(
        iter_audit(
            real.plane.audit_events(),
            verb="patch",
            **{"objectRef.namespace": ns, "objectRef.resource": "deployments"},
        )
    )
    bots = [e for e in patches if e["user"]["username"] == BOT]
    assert [(e["impersonatedUser"]["username"], e["responseStatus"]["code"]) for e in bots] == [
        ("alice", 200)
    ]


def test_without_the_impersonate_rule_a_mapped_person_is_refused_naming_the_bot(
    real: RealBackend, ns: str, bot: KubeApis, rbac: k8s.RbacAuthorizationV1Api
) -> None:
    bind_bot(rbac, ns, shipped_rules())
    run = instant(real, ns, bot, Actor("U0ALICE", kube_user="alice"))
    before = real.fingerprint(ns)
    with pytest.raises(ExecutionError) as refused:
        run()
    message = str(refused.value)
    assert message.startswith("Kubernetes refused"), message
    assert f'"{BOT}"' in message and "impersonate" in message, message
    assert real.fingerprint(ns) == before
