"""`/rollback` over signed HTTP: every verb, and every way to get it wrong.

The helpers at the top are shared by the other Slack end-to-end files: they
read what a person was told (the acknowledgement body, ephemerals and
response_url answers) and walk the confirmation modal.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from rollback_bot.slack.commands import VERBS
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.mrkdwn import escape
from sandbox.stack import LoopbackStack, deployment_manifest, wait_until
from tests.e2e.conftest import ALICE, BOB, CAROL, CHANNEL, alertmanager_payload, release

# -- shared helpers ------------------------------------------------------------------


def told(stack: LoopbackStack, user: str, resp: requests.Response | None = None) -> str:
    """Everything the person was told privately, as one text (newest last)."""
    parts = []
    if resp is not None and resp.text.strip():
        body = json.loads(resp.text)
        parts.append(body.get("text", "") + json.dumps(body.get("blocks", [])))
    parts += [
        e.get("text", "") + json.dumps(e.get("blocks") or []) for e in stack.slack.ephemerals(user)
    ]
    return "\n".join(parts)


def wait_told(
    stack: LoopbackStack, user: str, needle: str, resp: Any = None, *, times: int = 1
) -> str:
    """Wait until ``needle`` was said to ``user`` at least ``times`` times."""

    def seen() -> str | None:
        text = told(stack, user, resp)
        return text if text.count(needle) >= times else None

    return wait_until(seen, timeout=10)


def button(message: dict[str, Any], action_id: str) -> dict[str, Any] | None:
    for block in message.get("blocks") or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return element
    return None


def message_with(stack: LoopbackStack, action_id: str, channel: str = CHANNEL) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        return next((m for m in stack.slack.messages(channel) if button(m, action_id)), None)

    return wait_until(find, timeout=10)


def filled_modal(stack: LoopbackStack, after: int = 0) -> dict[str, Any]:
    """The confirmation modal once it holds the plan (opened first, then updated)."""

    def find() -> dict[str, Any] | None:
        updates = [v for v in stack.slack.views[after:] if v["op"] == "update"]
        return updates[-1]["view"] if updates else None

    return wait_until(find, timeout=10)


def request_via_command(
    stack: LoopbackStack, text: str, *, user: str = ALICE, reason: str = "5xx after v2"
) -> requests.Response:
    """`/rollback <text>`, then submit the confirmation modal it opens."""
    seen = len(stack.slack.views)
    resp = stack.driver.command(text, user_id=user, channel_id=CHANNEL)
    assert resp.status_code == 200
    view = filled_modal(stack, seen)
    assert view["callback_id"] == action_ids.REQUEST_MODAL, view
    return stack.driver.submit_view(
        callback_id=action_ids.REQUEST_MODAL,
        user_id=user,
        private_metadata=view["private_metadata"],
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: reason}},
    )


def kinds(stack: LoopbackStack, rollback_id: int | None = None) -> list[tuple[str, str]]:
    """(kind, actor) of every timeline event, or of one rollback's."""
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        events = uow.timeline.list_for_service(service="checkout") + uow.timeline.list_for_service(
            service="search"
        )
    return [(e.kind, e.actor) for e in events if rollback_id in (None, e.rollback_id)]


def state_of(stack: LoopbackStack, rollback_id: int) -> str | None:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        row = uow.rollbacks.get(id=rollback_id)
        return row.state if row else None


def wait_state(stack: LoopbackStack, rollback_id: int, state: str, timeout: float = 20) -> None:
    """Until the rollback is in ``state``; if it never gets there, where it stopped and why."""
    try:
        wait_until(lambda: state_of(stack, rollback_id) == state, timeout=timeout)
    except TimeoutError:
        assert stack.services is not None
        with stack.services.uow(read_only=True) as uow:
            events = uow.timeline.list_for_rollback(rollback_id=rollback_id)
            said = [f"{e.at:%H:%M:%S.%f} {e.kind}: {e.summary}" for e in events]
        raise AssertionError(
            f"R-{rollback_id} is {state_of(stack, rollback_id)}, not {state}, after "
            f"{timeout} s; its timeline:\n" + "\n".join(said)
        ) from None


# -- the tests -----------------------------------------------------------------------


def test_help_lists_every_verb_with_an_example(stack: LoopbackStack) -> None:
    resp = stack.driver.command("help", user_id=ALICE, channel_id=CHANNEL)
    assert resp.status_code == 200
    body = resp.json()
    assert body["response_type"] == "ephemeral"
    shown = body["text"] + json.dumps(body.get("blocks", []))
    # Forms are shown with < and > escaped: real Slack reads a bare <service> as a link.
    assert "<" not in shown.replace("<@", "")
    for verb in VERBS:
        usage, example = escape(verb.usage), escape(verb.example)
        assert usage.replace('"', '\\"') in shown or usage in shown, verb.name
        assert example.replace('"', '\\"') in shown or example in shown, verb.name


def test_mistakes_get_an_ephemeral_answer_with_the_right_form(stack: LoopbackStack) -> None:
    cases = {
        "frobnicate R-1": "/rollback help",  # unknown verb or service: the verbs are listed
        "chekout": "checkout",  # a typo: did you mean
        "approve": "/rollback approve &lt;id&gt;",  # missing argument
        "deny": "/rollback deny &lt;id&gt;",
        "history": "/rollback history &lt;service&gt;",
        "checkout --strategy sideways": "instant|blue-green|gradual",
        "export": "/rollback export &lt;incident&gt;",
        "pause R-x": "/rollback pause &lt;id&gt;",
        "<script>&": "&lt;script&gt;&amp;",  # hostile input comes back literal
    }
    for text, expected in cases.items():
        resp = stack.driver.command(text, user_id=ALICE, channel_id=CHANNEL)
        assert resp.status_code == 200, text
        body = resp.json()
        assert body["response_type"] == "ephemeral", text
        assert expected in body["text"], (text, body["text"])
        assert "Traceback" not in body["text"]
        assert "<" not in body["text"], (text, body["text"])
    assert kinds(stack) == []  # nothing happened


def test_unknown_rollback_id_and_unknown_incident_are_answered(stack: LoopbackStack) -> None:
    driver = stack.driver
    resp = driver.command("approve R-99", user_id=BOB, channel_id=CHANNEL)
    assert "no rollback R-99" in wait_told(stack, BOB, "R-99", resp)
    resp = driver.command("export INC-42", user_id=BOB, channel_id=CHANNEL)
    assert "INC-42" in wait_told(stack, BOB, "INC-42", resp)
    resp = driver.command("status R-7", user_id=BOB, channel_id=CHANNEL)
    assert "R-7" in wait_told(stack, BOB, "R-7", resp)
    assert stack.slack.uploads == []


def test_ambiguous_revision_is_explained_in_the_modal_and_ephemerally(
    stack: LoopbackStack,
) -> None:
    stack.deploy("shop", deployment_manifest("checkout", "registry.local/checkout:v1"))
    stack.wait_available("shop", "checkout")
    # The same image in a second revision (only an env var differs).
    patch = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "app", "env": [{"name": "MODE", "value": "b"}]}]}
            }
        }
    }
    stack.apis().apps.patch_namespaced_deployment("checkout", stack.ns("shop"), patch)
    stack.wait_available("shop", "checkout")
    stack.set_image("shop", "checkout", "registry.local/checkout:v2")
    stack.wait_available("shop", "checkout")
    before = stack.kube.dump()

    resp = stack.driver.command("checkout --to v1", user_id=ALICE, channel_id=CHANNEL)
    assert resp.status_code == 200
    text = wait_told(stack, ALICE, "v1", resp)
    assert "revision" in text.lower() and "1" in text and "2" in text
    modal = filled_modal(stack)
    assert "v1" in json.dumps(modal)
    assert stack.kube.dump() == before
    assert all(kind != "rollback.requested" for kind, _ in kinds(stack))


def test_status_and_history_answer_ephemerally(stack: LoopbackStack) -> None:
    release(stack)
    request_via_command(stack, "checkout")
    wait_state(stack, 1, "requested")

    resp = stack.driver.command("status checkout", user_id=BOB, channel_id=CHANNEL)
    text = wait_told(stack, BOB, "R-1", resp)
    assert "checkout" in text and "requested" in text.lower()
    resp = stack.driver.command("status R-1", user_id=BOB, channel_id=CHANNEL)
    wait_until(lambda: told(stack, BOB).count("R-1") >= 2, timeout=10)

    resp = stack.driver.command("history checkout", user_id=BOB, channel_id=CHANNEL)
    text = wait_told(stack, BOB, "registry.local/checkout:v1", resp)
    assert "registry.local/checkout:v2" in text
    assert "stable" in text.lower()


def test_export_uploads_the_postmortem_to_the_channel(stack: LoopbackStack) -> None:
    release(stack)
    assert stack.post_alert("alertmanager", alertmanager_payload()).status_code == 200
    message_with(stack, action_ids.ROLL_BACK)
    resp = stack.driver.command("export INC-1 --format json", user_id=BOB, channel_id=CHANNEL)
    assert resp.status_code == 200
    wait_told(stack, BOB, "uploaded", resp)
    upload = wait_until(lambda: stack.slack.uploads, timeout=10)[0]
    doc = json.loads(upload["content"] if "content" in upload else upload["bytes"])
    assert doc["timeline"][0]["kind"] == "alert.firing"
    assert ("postmortem.exported", BOB) in kinds(stack)


def test_drill_changes_nothing_and_says_drill_everywhere(stack: LoopbackStack) -> None:
    release(stack, "search", bad=False)
    stack.set_image("shop", "search", "registry.local/search:v3")
    stack.wait_available("shop", "search")
    before = stack.kube.dump()
    audited = len(stack.kube.audit)

    seen = len(stack.slack.views)
    resp = stack.driver.command("drill search --to 1", user_id=ALICE, channel_id="C0SEARCH")
    assert resp.status_code == 200
    view = filled_modal(stack, seen)
    assert "drill" in json.dumps(view).lower()
    stack.driver.submit_view(
        callback_id=action_ids.REQUEST_MODAL,
        user_id=ALICE,
        private_metadata=view["private_metadata"],
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: ""}},
    )
    wait_state(stack, 1, "done")
    rollback = wait_until(
        lambda: next((m for m in stack.slack.messages("C0SEARCH") if "R-1" in m["text"]), None)
    )
    wait_until(
        lambda: any(m.get("broadcast") for m in stack.slack.thread("C0SEARCH", rollback["ts"]))
    )
    assert stack.services is not None

    assert stack.kube.dump() == before  # byte-identical: nothing was written
    writes = stack.kube.audit[audited:]
    assert writes, "a drill goes through the API, as a dry run"
    assert all(a.get("dryRun") for a in writes), writes
    assert "DRILL" in rollback["text"] + json.dumps(rollback.get("blocks") or [])
    thread = stack.slack.thread("C0SEARCH", rollback["ts"])
    assert thread and all("DRILL" in m["text"] or "dry run" in m["text"] for m in thread)
    with stack.services.uow(read_only=True) as uow:
        events = [e for e in uow.timeline.list_for_service(service="search") if e.rollback_id == 1]
    assert events[0].summary.startswith("DRILL")
    assert any("drill" in e.summary.lower() for e in events if e.kind == "rollback.done")


def test_export_is_for_the_services_people_and_only_into_its_channel(
    stack: LoopbackStack,
) -> None:
    release(stack)
    assert stack.post_alert("alertmanager", alertmanager_payload()).status_code == 200
    message_with(stack, action_ids.ROLL_BACK)
    # Carol is in the workspace but in no group or list of checkout's policy.
    outsider = stack.driver.command("export INC-1", user_id=CAROL, channel_id=CHANNEL)
    wait_told(stack, CAROL, "you may not export postmortems for checkout", outsider)
    elsewhere = stack.driver.command("export INC-1", user_id=BOB, channel_id="C0RANDOM")
    wait_told(stack, BOB, "only in its channel", elsewhere)
    assert stack.slack.uploads == []
    refused = [k for k in kinds(stack) if k[0] == "rollback.refused"]
    assert ("rollback.refused", CAROL) in refused and ("rollback.refused", BOB) in refused
    assert not any(k[0] == "postmortem.exported" for k in kinds(stack))
