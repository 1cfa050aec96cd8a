"""Alert in, one click, an approval, the Deployment rolled back, the postmortem out."""

from __future__ import annotations

import json
import subprocess

from rollback_bot.slack.ui import action_ids
from rollback_bot.storage.migrator import ensure_up_to_date  # noqa: F401  (the stack migrates)
from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import ALICE, BOB, CHANNEL, alertmanager_payload, release
from tests.support import tools


def _button(blocks: list[dict], action_id: str) -> dict | None:
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return element
    return None


def _message_with(stack: LoopbackStack, action_id: str) -> dict:
    def find() -> dict | None:
        for message in stack.slack.messages(CHANNEL):
            if _button(message.get("blocks") or [], action_id):
                return message
        return None

    return wait_until(find, timeout=10)


def test_alert_click_approve_rollback_export(stack: LoopbackStack, tmp_path) -> None:
    release(stack)
    assert stack.post_alert("alertmanager", alertmanager_payload()).status_code == 200

    alert = _message_with(stack, action_ids.ROLL_BACK)
    roll_back = _button(alert["blocks"], action_ids.ROLL_BACK)
    assert "Roll back" in roll_back["text"]["text"]
    text = json.dumps(alert["blocks"])
    assert "HighErrorRate" in text and "registry.local/checkout:v2" in text
    assert "registry.local/checkout:v1" in text  # the last stable (previous) revision

    # Alice clicks "Roll back": the confirmation modal opens, then fills with the plan.
    driver = stack.driver
    resp = driver.click(
        action_id=action_ids.ROLL_BACK,
        value=roll_back["value"],
        user_id=ALICE,
        channel_id=CHANNEL,
        message_ts=alert["ts"],
    )
    assert resp.status_code == 200
    modal = wait_until(
        lambda: next((v for v in stack.slack.views if v["op"] == "update"), None), timeout=10
    )
    view = modal["view"]
    assert view["callback_id"] == action_ids.REQUEST_MODAL
    assert "registry.local/checkout:v1" in json.dumps(view["blocks"])
    resp = driver.submit_view(
        callback_id=action_ids.REQUEST_MODAL,
        user_id=ALICE,
        private_metadata=view["private_metadata"],
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "5xx after v2"}},
    )
    assert resp.status_code == 200

    # Production: the two-person rule. Bob approves.
    request = _message_with(stack, action_ids.APPROVE)
    assert _button(request["blocks"], action_ids.DENY) is not None
    approve = _button(request["blocks"], action_ids.APPROVE)
    driver.click(
        action_id=action_ids.APPROVE,
        value=approve["value"],
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts=request["ts"],
    )

    def done() -> bool:
        with stack.services.uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=1)
            return row is not None and row.state == "done"

    wait_until(done, timeout=20)
    deployment = stack.deployment("shop", "checkout")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "registry.local/checkout:v1"
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert "pod-template-hash" not in deployment["spec"]["template"]["metadata"]["labels"]

    # kubectl agrees.
    kubeconfig = stack.kube.write_kubeconfig(tmp_path / "kubeconfig")
    history = subprocess.run(
        [
            tools.kubectl(),
            "--kubeconfig",
            kubeconfig,
            "--cache-dir",
            str(tmp_path / "cache"),
            "-n",
            stack.ns("shop"),
            "rollout",
            "history",
            "deployment/checkout",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]

    # The thread says it as a person would: who approved and what happens, then the result.
    stack.services.outbox.flush(timeout=10)
    said = [m["text"] for m in stack.slack.thread(CHANNEL, request["ts"])]
    assert any(f"<@{BOB}> approved; rolling back checkout to revision 1" in t for t in said), said
    assert any("checkout (production) rolled back to revision 1" in t for t in said), said

    # The timeline, with actors, and the postmortem.
    with stack.services.uow(read_only=True) as uow:
        events = uow.timeline.list_for_incident(incident_id=1)
    kinds = [(e.kind, e.actor) for e in events]
    assert kinds[0] == ("alert.firing", "alertmanager")
    assert ("rollback.requested", ALICE) in kinds
    assert ("rollback.approved", BOB) in kinds
    assert ("rollback.done", "rollback-bot") in kinds
    assert any(k == "kube.changed" for k, _ in kinds)

    # A healthy rollout is not a mitigation: no alert source was asked, so the incident
    # stays open (and says so) until its alert resolves.
    assert ("incident.mitigated", "rollback-bot") not in kinds
    done = next(e for e in events if e.kind == "rollback.done")
    assert "NOT marked mitigated" in done.summary and "Not checked: alertmanager" in done.summary
    with stack.services.uow(read_only=True) as uow:
        assert uow.incidents.get(id=1).mitigated_at is None  # type: ignore[union-attr]
    resolved = alertmanager_payload(status="resolved")
    assert stack.post_alert("alertmanager", resolved).status_code == 200
    with stack.services.uow(read_only=True) as uow:
        events = uow.timeline.list_for_incident(incident_id=1)

    exported = stack.services.queries.postmortem(1, "json")[1]
    doc = json.loads(exported)
    assert doc["metrics"]["time_to_acknowledge_seconds"] >= 0
    assert (
        doc["metrics"]["time_to_mitigate_seconds"] >= doc["metrics"]["time_to_acknowledge_seconds"]
    )
    assert doc["incident"]["state"] == "resolved"
    assert [e["kind"] for e in doc["timeline"]] == [e.kind for e in events]
