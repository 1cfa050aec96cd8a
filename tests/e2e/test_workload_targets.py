"""A StatefulSet and a DaemonSet rolled back from the alert card, on the real control plane.

The same path as a Deployment (tests/e2e/test_walking_skeleton.py): the alert over HTTP,
"Roll back" clicked on the card, the confirmation modal with the plan, Bob's approval, the
ControllerRevision's template written, ``kubectl rollout status`` for the kind as the
verification, the timeline and the Event on the workload. Real control plane only: the
emulator in ``sandbox/kube`` implements neither kind (nor ControllerRevisions); Slack is
the loopback stand-in, every request to the bot signed as Slack signs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from rollback_bot.app import ServerThread, build, slack_client
from rollback_bot.kube.client import KubeApis
from rollback_bot.slack.ui import action_ids
from rollback_bot.web.http import create_web_app
from rollback_bot.web.slack_app import create_bolt_app
from sandbox.realk8s import RealControlPlane
from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import ALICE, BOB, CHANNEL, FAST_SLACK, alertmanager_payload
from tests.executors.test_workloads import Workloads
from tests.support.backend import RealBackend

WAIT = 90.0


class RealClusterStack(LoopbackStack):
    """The loopback stack with the bot talking to the real control plane."""

    def __init__(self, *, real_apis: KubeApis, **kw: Any) -> None:
        super().__init__(**kw)
        self.real_apis = real_apis

    def start_bot(self) -> None:
        settings = self.settings()
        self.services = build(
            settings,
            catalog=self.catalog,
            kube=self.real_apis,
            slack=slack_client(settings),
        )
        web = create_web_app(self.services, create_bolt_app(self.services))
        self.services.start()
        self._server = ServerThread(web).start()


@pytest.fixture
def real(real_control_plane: RealControlPlane) -> Iterator[RealBackend]:
    backend = RealBackend(real_control_plane)
    try:
        yield backend
    finally:
        backend.close()


def _catalog(kind: str, namespace: str) -> dict[str, Any]:
    return {
        "services": [
            {
                "name": "db",
                "namespace": namespace,
                kind: "db",
                "environment": "production",
                "channel": CHANNEL,
                "match": {"service": "db"},
                "policy": {"requesters": {"users": [ALICE]}, "approvers": {"users": [BOB]}},
                "health": {"timeout_seconds": WAIT, "wait_seconds": 0},
                "stable_window_seconds": 0,
            }
        ]
    }


def _button(blocks: list[dict[str, Any]], action_id: str) -> dict[str, Any] | None:
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return dict(element)
    return None


def _message_with(stack: LoopbackStack, action_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for message in stack.slack.messages(CHANNEL):
            if _button(message.get("blocks") or [], action_id):
                return dict(message)
        return None

    found: dict[str, Any] = wait_until(find, timeout=30)
    return found


@pytest.mark.parametrize("kind", ["statefulset", "daemonset"])
def test_alert_card_to_verified_rollback(real: RealBackend, migrated_url: str, kind: str) -> None:
    w = Workloads(real, kind)
    ns = real.namespace("shop")
    w.create(ns, "shop/db:v1")
    w.wait_settled(ns)
    w.roll(ns, "shop/db:v2", 2)
    w.wait_settled(ns)

    with RealClusterStack(
        real_apis=real.apis,
        slack_channel_rate=FAST_SLACK,
        catalog=_catalog(kind, ns),
        database_url=migrated_url,
    ) as stack:
        payload = alertmanager_payload("db")
        assert stack.post_alert("alertmanager", payload).status_code == 200
        alert = _message_with(stack, action_ids.ROLL_BACK)
        card = json.dumps(alert["blocks"])
        assert "shop/db:v2" in card and "shop/db:v1" in card  # running now, last stable

        roll_back = _button(alert["blocks"], action_ids.ROLL_BACK)
        assert roll_back is not None
        driver = stack.driver
        driver.click(
            action_id=action_ids.ROLL_BACK,
            value=roll_back["value"],
            user_id=ALICE,
            channel_id=CHANNEL,
            message_ts=alert["ts"],
        )
        modal = wait_until(
            lambda: next((v for v in stack.slack.views if v["op"] == "update"), None), timeout=30
        )
        shown = json.dumps(modal["view"]["blocks"])
        assert "shop/db:v1" in shown and "update strategy: RollingUpdate" in shown
        if kind == "statefulset":
            assert "volumes and data are NOT rolled back" in shown
            assert "pods replaced: db-1, db-0" in shown
        driver.submit_view(
            callback_id=action_ids.REQUEST_MODAL,
            user_id=ALICE,
            private_metadata=modal["view"]["private_metadata"],
            values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "errors after v2"}},
        )
        request = _message_with(stack, action_ids.APPROVE)
        approve = _button(request["blocks"], action_ids.APPROVE)
        assert approve is not None
        driver.click(
            action_id=action_ids.APPROVE,
            value=approve["value"],
            user_id=BOB,
            channel_id=CHANNEL,
            message_ts=request["ts"],
        )
        services = stack.services
        assert services is not None

        def finished() -> str | None:
            with services.uow(read_only=True) as uow:
                row = uow.rollbacks.get(id=1)
                return row.state if row is not None and row.state in ("done", "failed") else None

        assert wait_until(finished, timeout=WAIT) == "done"
        live = w.get(ns)
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/db:v1"
        assert w.history(ns) == {2: ("shop/db:v2",), 3: ("shop/db:v1",)}

        # /rollback history reads the ControllerRevisions: v1 now live as revision 3.
        seen = len(stack.slack.responses)
        assert driver.command("history db", user_id=ALICE, channel_id=CHANNEL).status_code == 200
        history = json.dumps(wait_until(lambda: stack.slack.responses[seen:], timeout=30))
        assert "shop/db:v1" in history and "shop/db:v2" in history

        with services.uow(read_only=True) as uow:
            events = uow.timeline.list_for_incident(incident_id=1)
        kinds = [(e.kind, e.actor) for e in events]
        assert ("rollback.requested", ALICE) in kinds
        assert ("rollback.approved", BOB) in kinds
        assert ("rollback.done", "rollback-bot") in kinds
        changed = next(e for e in events if e.kind == "kube.changed")
        assert ("StatefulSet" if kind == "statefulset" else "DaemonSet") in json.dumps(
            changed.data
        ) + changed.summary
        # Verified by kubectl's rollout status for the kind, and the gate read the workload.
        done = next(e for e in events if e.kind == "rollback.done")
        wanted = (
            "partitioned roll out complete: 2 new pods have been updated"
            if kind == "statefulset"
            else 'daemon set "db" successfully rolled out'
        )
        assert wanted in done.summary
        readiness = (done.data or {})["checks"]["readiness"]
        assert readiness["ok"] and readiness["query"] == f"{kind} {ns}/db"

    # The Event on the workload itself, as `kubectl describe` shows it.
    involved = [
        e["involvedObject"]
        for e in real.list("events", ns)
        if (e.get("source") or {}).get("component") == "rollback-bot"
    ]
    assert {"StatefulSet" if kind == "statefulset" else "DaemonSet"} == {
        o["kind"] for o in involved
    }
