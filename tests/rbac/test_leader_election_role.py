"""deploy/rbac/leader-election.yaml against the real apiserver's RBAC.

The bot's own identity, bound to exactly that Role in its namespace, creates, renews and
gives up its Lease; with any one verb taken away the elector says "Kubernetes refused ..."
naming the verb, the resource and the identity, and does not lead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from rollback_bot.clock import FakeClock
from rollback_bot.kube.lease import ElectionSettings, LeaseElector
from sandbox.realk8s import RealControlPlane
from tests.rbac.test_shipped_role import BOT, RBAC_GROUP, without
from tests.support.backend import RealBackend, client_for

ROLE = Path(__file__).resolve().parents[2] / "deploy" / "rbac" / "leader-election.yaml"


def _role() -> dict[str, Any]:
    docs = {d["kind"]: d for d in yaml.safe_load_all(ROLE.read_text()) if d}
    role: dict[str, Any] = docs["Role"]
    return role


@pytest.fixture
def real(real_control_plane: RealControlPlane) -> Iterator[RealBackend]:
    backend = RealBackend(real_control_plane)
    yield backend
    backend.close()


def _bind(real: RealBackend, ns: str, rules: list[dict[str, Any]]) -> None:
    rbac = k8s.RbacAuthorizationV1Api(real.apis.api_client)
    role = _role()
    rbac.create_namespaced_role(ns, {**role, "rules": rules})
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": role["metadata"]["name"]},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role["metadata"]["name"]},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": BOT}],
        },
    )


def _elector(plane: RealControlPlane, ns: str, clock: FakeClock) -> LeaseElector:
    return LeaseElector(
        api_client=client_for(plane, BOT),
        settings=ElectionSettings(
            namespace=ns,
            name="rollback-bot",
            identity="replica-1",
            lease_duration=3,
            renew_deadline=2,
            retry_period=0.5,
        ),
        clock=clock,
        on_started=lambda: None,
        on_stopped=lambda: None,
    )


def test_the_shipped_role_lets_the_bot_lead_renew_and_let_go(
    real: RealBackend, real_control_plane: RealControlPlane
) -> None:
    ns = real.namespace("rollback-bot")
    _bind(real, ns, _role()["rules"])
    clock = FakeClock()
    elector = _elector(real_control_plane, ns, clock)
    assert elector.tick(), elector.last_error  # get (404), create
    clock.advance(1)
    assert elector.tick(), elector.last_error  # get, update
    elector.stop()  # update: holder cleared
    lease = k8s.CoordinationV1Api(real.apis.api_client).read_namespaced_lease("rollback-bot", ns)
    assert lease.spec.holder_identity == ""
    assert lease.spec.lease_duration_seconds == 1
    assert lease.spec.lease_transitions == 0


def test_the_role_has_exactly_the_three_verbs_on_leases() -> None:
    assert _role()["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]


@pytest.mark.parametrize("verb", ["get", "create", "update"])
def test_without_any_one_verb_the_elector_is_refused_clearly(
    real: RealBackend, real_control_plane: RealControlPlane, verb: str
) -> None:
    ns = real.namespace("rollback-bot")
    _bind(real, ns, without(_role()["rules"], "leases", verb))
    clock = FakeClock()
    elector = _elector(real_control_plane, ns, clock)
    led = elector.tick()
    if verb == "update":  # creating the lease needs no update; renewing it does
        assert led, elector.last_error
        clock.advance(1)
        elector.tick()
        clock.advance(2)
        elector.check_deadline()
    assert not elector.leading
    message = elector.last_error or ""
    assert message.startswith("Kubernetes refused"), message
    assert f'user "{BOT}" may not {verb} leases.coordination.k8s.io in namespace {ns}' in message
    assert "Traceback" not in message
