"""What the bot says during an incident is true (issue 13, items 1, 3 and 7).

checkout runs v1, then v2 (good), then v3 (crashing). After the bot rolled v3 back to v2,
every surface gives the same next target, none of them v3; a rollback to what runs is
refused before approval; v3 needs an explicit override; the cluster shows who did it.
Everything goes over signed HTTP to the running bot; the database and the emulator are
only read.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from rollback_bot.rollbacks.service import RequestSpec
from rollback_bot.slack.ui import action_ids
from rollback_bot.storage.models import Rollback, TimelineEvent
from sandbox.stack import LoopbackStack, deployment_manifest, wait_until
from tests.e2e.conftest import ALICE, BOB, CHANNEL, alertmanager_payload

NS = "shop"
WAIT = 30.0


def _three_releases(stack: LoopbackStack) -> None:
    stack.deploy(NS, deployment_manifest("checkout", "registry.local/checkout:v1"))
    stack.wait_available(NS, "checkout")
    stack.set_image(NS, "checkout", "registry.local/checkout:v2")
    stack.wait_available(NS, "checkout")
    stack.kube.crash_image("registry.local/checkout:v3")
    stack.set_image(NS, "checkout", "registry.local/checkout:v3")
    stack.kube.wait_for(lambda: _revision(stack) == "3", timeout=WAIT)


def _revision(stack: LoopbackStack) -> str | None:
    obj = stack.kube.get("deployments", NS, "checkout") or {}
    return (obj.get("metadata", {}).get("annotations") or {}).get(
        "deployment.kubernetes.io/revision"
    )


def _button(message: dict[str, Any], action_id: str) -> dict[str, Any] | None:
    for block in message.get("blocks") or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return dict(element)
    return None


def _first_message_with(stack: LoopbackStack, action_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        assert stack.services is not None
        stack.services.outbox.flush(timeout=5)
        return next((m for m in stack.slack.messages(CHANNEL) if _button(m, action_id)), None)

    return dict(wait_until(find, timeout=WAIT))


def _click(stack: LoopbackStack, message: dict[str, Any], action_id: str, user: str) -> None:
    found = _button(message, action_id)
    assert found is not None
    resp = stack.driver.click(
        action_id=action_id,
        value=found["value"],
        user_id=user,
        channel_id=CHANNEL,
        message_ts=message["ts"],
    )
    assert resp.status_code == 200


def _modal_after(stack: LoopbackStack, seen: int) -> dict[str, Any]:
    update = wait_until(
        lambda: next((v for v in stack.slack.views[seen:] if v["op"] == "update"), None),
        timeout=WAIT,
    )
    return dict(update["view"])


def _modal(stack: LoopbackStack, text: str, *, user: str = ALICE) -> dict[str, Any]:
    seen = len(stack.slack.views)
    assert stack.driver.command(text, user_id=user, channel_id=CHANNEL).status_code == 200
    return _modal_after(stack, seen)


def _refused_modal(stack: LoopbackStack, text: str) -> dict[str, Any]:
    """A modal that can only say why not; its ephemeral reply is awaited too, so a later
    command's reply is not confused with it."""
    seen = len(stack.slack.responses)
    modal = _modal(stack, text)
    wait_until(
        lambda: any("Cannot roll back" in str(r.get("text")) for r in stack.slack.responses[seen:]),
        timeout=WAIT,
    )
    return modal


def _target_in(modal: dict[str, Any]) -> str:
    """The modal's "Rolls back to" field, or its error text when there is no target."""
    text = json.dumps(modal["blocks"])
    if "Rolls back to" not in text:
        return text
    for block in modal["blocks"]:
        for field in block.get("fields") or []:
            if "Rolls back to" in field["text"]:
                return str(field["text"])
    raise AssertionError(text)


def _reply(stack: LoopbackStack, text: str, *, user: str = ALICE) -> str:
    seen = len(stack.slack.responses)
    resp = stack.driver.command(text, user_id=user, channel_id=CHANNEL)
    assert resp.status_code == 200
    if resp.text.strip() and resp.json().get("text"):
        return str(resp.json()["text"])
    found = wait_until(lambda: stack.slack.responses[seen:], timeout=WAIT)
    return "\n".join(str(r.get("text", "")) + json.dumps(r.get("blocks") or []) for r in found)


def _submit(stack: LoopbackStack, modal: dict[str, Any], *, force_bad: bool = False) -> Any:
    values: dict[str, Any] = {action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "v3 5xx"}}
    if force_bad:
        values[action_ids.FORCE_BAD_BLOCK] = {
            action_ids.FORCE_BAD_INPUT: {
                "type": "checkboxes",
                "selected_options": [{"value": "force_bad"}],
            }
        }
    return stack.driver.submit_view(
        callback_id=action_ids.REQUEST_MODAL,
        user_id=ALICE,
        private_metadata=modal["private_metadata"],
        values=values,
    )


def _rollbacks(stack: LoopbackStack) -> int:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count(Rollback.id))) or 0)


def _row(stack: LoopbackStack, rollback_id: int) -> Rollback:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        row = uow.rollbacks.get(id=rollback_id)
    assert row is not None
    return row


def _timeline(stack: LoopbackStack) -> list[TimelineEvent]:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        return list(uow.session.scalars(select(TimelineEvent).order_by(TimelineEvent.id)))


def _roll_back_v3(stack: LoopbackStack) -> dict[str, Any]:
    """Alert, Roll back on the card (modal: revision 2), Bob approves; the card."""
    assert stack.post_alert("alertmanager", alertmanager_payload()).status_code == 200
    card = _first_message_with(stack, action_ids.ROLL_BACK)
    assert "Last stable: revision 2" in json.dumps(card["blocks"])
    seen = len(stack.slack.views)
    _click(stack, card, action_ids.ROLL_BACK, ALICE)
    modal = _modal_after(stack, seen)
    assert "revision 2" in _target_in(modal) and "checkout:v2" in _target_in(modal)
    assert _submit(stack, modal).status_code == 200
    # The card is the incident's live view: the request shows, and no second Roll back.
    waiting = _card_when(stack, card, "R-1 in progress")
    assert "waiting for approval" in json.dumps(waiting["blocks"])
    assert _button(waiting, action_ids.ROLL_BACK) is None
    _click(stack, _first_message_with(stack, action_ids.APPROVE), action_ids.APPROVE, BOB)
    wait_until(lambda: _row(stack, 1).state in ("done", "failed"), timeout=WAIT)
    assert _row(stack, 1).state == "done"
    after = json.dumps(_card_when(stack, card, "R-1 rolled back to revision 2")["blocks"])
    assert f"approved by <@{BOB}>" in after and "Running now: revision 4" in after
    return card


def _card_when(stack: LoopbackStack, card: dict[str, Any], text: str) -> dict[str, Any]:
    """The alert card as edited in place (chat.update), once it says ``text``."""

    def edited() -> dict[str, Any] | None:
        assert stack.services is not None
        stack.services.outbox.flush(timeout=5)
        now = stack.slack.message(CHANNEL, card["ts"])
        return now if now and text in json.dumps(now.get("blocks") or []) else None

    try:
        return dict(wait_until(edited, timeout=WAIT))
    except TimeoutError:
        now = stack.slack.message(CHANNEL, card["ts"])
        raise AssertionError(f"the card never said {text!r}: {json.dumps(now)[:2000]}") from None


def test_every_surface_agrees_on_the_next_target_and_none_proposes_the_bad_release(
    stack: LoopbackStack,
) -> None:
    _three_releases(stack)
    card = _roll_back_v3(stack)
    assert stack.services is not None
    assert _revision(stack) == "4"  # v2 again

    # The release it left is remembered as bad, with the rollback and incident.
    verdicts = [e for e in _timeline(stack) if e.kind == "release.verdict"]
    assert any(
        e.data["verdict"] == "bad" and "checkout:v3" in e.data["images"] and e.rollback_id == 1
        for e in verdicts
    )

    # 1. the alert card (as rendered now), 2. its Roll back button, 3. /rollback,
    # 4. history, 5. drill, 6. an automatic trigger: one answer, revision 1 (v1).
    view = stack.services.presenter.alert_group(1)
    assert view is not None and (view.stable_revision, view.stable_image) == (
        1,
        "registry.local/checkout:v1",
    )
    seen = len(stack.slack.views)
    _click(stack, card, action_ids.ROLL_BACK, ALICE)
    from_card = _target_in(_modal_after(stack, seen))
    from_command = _target_in(_modal(stack, "checkout"))
    history = _reply(stack, "history checkout")
    drill = _target_in(_modal(stack, "drill checkout"))
    automatic = stack.services.rollbacks.plan(
        RequestSpec(service="checkout", user="automation", automatic=True)
    )
    for said in (from_card, from_command, drill):
        assert "revision 1" in said and "checkout:v1" in said, said
        assert "checkout:v3" not in said
    assert automatic.to_revision == 1
    row_1 = next(b for b in json.loads(history[history.index("[") :]) if "*1*" in json.dumps(b))
    assert "rollback target" in json.dumps(row_1)
    row_3 = next(b for b in json.loads(history[history.index("[") :]) if "*3*" in json.dumps(b))
    assert "known bad" in json.dumps(row_3) and "accessory" not in row_3  # no Roll back to 3


def test_what_runs_is_refused_before_approval_and_a_bad_release_needs_the_override(
    stack: LoopbackStack,
) -> None:
    _three_releases(stack)
    _roll_back_v3(stack)
    before = _rollbacks(stack)

    same = _refused_modal(stack, "checkout --to 4")
    assert "already runs revision 4" in json.dumps(same), same
    assert _rollbacks(stack) == before  # nobody was asked to approve anything

    bad = _modal(stack, "checkout --to 3")
    text = json.dumps(bad)
    assert "KNOWN BAD" in text and action_ids.FORCE_BAD_BLOCK in text
    refused = _submit(stack, bad)
    assert refused.status_code == 200 and "known bad" in refused.text
    assert _rollbacks(stack) == before

    assert _submit(stack, bad, force_bad=True).status_code == 200
    wait_until(lambda: _rollbacks(stack) == before + 1, timeout=WAIT)
    approval = wait_until(
        lambda: next(
            (
                m
                for m in reversed(stack.slack.messages(CHANNEL))
                if _button(m, action_ids.APPROVE) and "KNOWN BAD" in json.dumps(m)
            ),
            None,
        ),
        timeout=WAIT,
    )
    assert "checkout:v3" in json.dumps(approval)

    # `--force-bad` on the command is the override: the warning stays, no checkbox.
    assert "aborted" in _reply(stack, "abort R-2")
    wait_until(lambda: _row(stack, 2).state == "aborted", timeout=WAIT)
    forced = _modal(stack, "checkout --to 3 --force-bad --reason again")
    assert "KNOWN BAD" in json.dumps(forced)
    assert action_ids.FORCE_BAD_BLOCK not in json.dumps(forced["blocks"])
    assert _submit(stack, forced).status_code == 200
    wait_until(lambda: _rollbacks(stack) == before + 2, timeout=WAIT)


def test_marks_by_people_change_what_is_proposed(stack: LoopbackStack) -> None:
    _three_releases(stack)
    _roll_back_v3(stack)
    assert "marked bad" in _reply(stack, "mark checkout 1 bad config drift")
    no_target = _refused_modal(stack, "checkout")
    text = json.dumps(no_target)
    assert "No revision of" in text and "known stable" in text
    assert "revision 1" in text and "marked bad" in text  # what is known, per revision
    assert "Refused" in _reply(stack, "mark checkout 1 good", user="U0MALLORY")
    assert "marked good" in _reply(stack, "mark checkout 1 good fixed", user=BOB)
    assert "revision 1" in _target_in(_modal(stack, "checkout"))


def test_mitigated_only_on_evidence_or_by_a_person(stack: LoopbackStack) -> None:
    _three_releases(stack)
    _roll_back_v3(stack)
    events = _timeline(stack)
    done = next(e for e in events if e.kind == "rollback.done")
    # No Alertmanager configured: rollout healthy, and it says what was not checked.
    assert "rollout healthy" in done.summary and "NOT marked mitigated" in done.summary
    checks = {e.data["name"]: e.data for e in events if e.kind == "health.check"}
    assert checks["readiness"]["result"] == "passed"
    assert checks["readiness"]["source"] == "kubernetes" and checks["readiness"]["at"]
    assert checks["alertmanager"]["result"] == "skipped"
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        assert uow.incidents.get(id=1).state == "open"  # type: ignore[union-attr]

    assert "Refused" in _reply(stack, "mitigated INC-1", user="U0MALLORY")
    assert "declared mitigated" in _reply(stack, "mitigated INC-1 error rate normal", user=BOB)
    card = _card_when(stack, _first_message_with(stack, action_ids.EXPORT), "INC-1 mitigated")
    assert _button(card, action_ids.ROLL_BACK) is None  # after mitigation: the postmortem
    with stack.services.uow(read_only=True) as uow:
        incident = uow.incidents.get(id=1)
    assert incident is not None and incident.state == "mitigated" and incident.mitigated_at
    assert any(e.kind == "incident.mitigated" and e.actor == BOB for e in _timeline(stack))
    assert "already mitigated" in _reply(stack, "mitigated INC-1", user=BOB)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="the pinned kubectl is not on PATH")
def test_kubectl_shows_the_change_cause_and_the_events(
    stack: LoopbackStack, tmp_path: Path
) -> None:
    _three_releases(stack)
    _roll_back_v3(stack)
    kubeconfig = stack.kube.write_kubeconfig(tmp_path / "kubeconfig")

    def kubectl(*args: str) -> str:
        done = subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                kubeconfig,
                "--cache-dir",
                str(tmp_path / "c"),
                "-n",
                stack.ns(NS),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    history = kubectl("rollout", "history", "deployment/checkout")
    line = next(ln for ln in history.splitlines() if ln.split()[:1] == ["4"])
    for word in ("rollback-bot", "R-1", "INC-1", ALICE, BOB, "v3 5xx"):
        assert word in line, history
    described = kubectl("describe", "deployment", "checkout")
    assert "RollbackStarted" in described and "RolledBack" in described, described
    events = kubectl("get", "events", "-o", "json")
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"RollbackStarted", "RolledBack"} <= reasons
