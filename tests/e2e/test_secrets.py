"""Secrets pushed through every path never come out: Slack, the database, logs, exports.

Pod-template env values, ConfigMap values under secret-looking keys, alert
annotations and a typed reason each carry a secret. After a full rollback the
raw values are searched for in every table, every call the Slack stand-in
received (messages, modals, uploads), the captured logs and both exports.
Only ``snapshots.body`` may hold them: restoring a ConfigMap needs its values.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import MetaData, create_engine, select

from rollback_bot.slack.ui import action_ids
from sandbox.stack import (
    ALERT_TOKEN,
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    LoopbackStack,
    deployment_manifest,
    wait_until,
)
from tests.e2e.conftest import MakeStack
from tests.e2e.execute_support import (
    ALICE,
    CHANNEL,
    NS,
    WAIT,
    FakeAlertmanager,
    create,
    latest_rollback_id,
    open_modal,
    revision,
    running_alertmanager,
    running_stack,
    said,
    settled,
    wait_state,
)

ENV_PASSWORD = ("hunter2-env-before", "hunter2-env-after")  # secret by name only
ENV_TOKEN = ("xoxb-1111-env-before", "xoxb-2222-env-after")  # secret by name and by look
CM_PASSWORD = ("cm-pass-before-77", "cm-pass-after-88")
CM_TOKEN = ("xoxp-3333-cm-before", "xoxp-4444-cm-after")
ANNOTATION_TOKEN = "ghp_" + "A" * 36
ANNOTATION_KEYED = "plain-but-named-api-key-99"
REASON_KEY = "AKIA" + "Q" * 16
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----"

NEVER_SHOWN = [
    *ENV_PASSWORD,
    *ENV_TOKEN,
    *CM_PASSWORD,
    *CM_TOKEN,
    ANNOTATION_TOKEN,
    ANNOTATION_KEYED,
    REASON_KEY,
    "MIIEabc",
]


@pytest.fixture
def alertmanager() -> Iterator[FakeAlertmanager]:
    yield from running_alertmanager()


@pytest.fixture
def stack(
    make_stack: MakeStack, migrated_url: str, alertmanager: FakeAlertmanager
) -> Iterator[LoopbackStack]:
    yield from running_stack(make_stack, migrated_url, alertmanager)


def _env(i: int) -> list[dict[str, str]]:
    return [
        {"name": "DB_PASSWORD", "value": ENV_PASSWORD[i]},
        {"name": "API_TOKEN", "value": ENV_TOKEN[i]},
        {"name": "MODE", "value": ["safe", "fast"][i]},
    ]


def _release(stack: LoopbackStack) -> None:
    data = {"MODE": "safe", "PASSWORD": CM_PASSWORD[0], "SLACK_TOKEN": CM_TOKEN[0]}
    create(
        stack,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api-config"}, "data": data},
    )
    manifest = deployment_manifest("api", "registry.local/api:v1", configmap="api-config")
    manifest["spec"]["template"]["spec"]["containers"][0]["env"] = _env(0)
    stack.deploy(NS, manifest)
    settled(stack, "api")
    after = {"MODE": "fast", "PASSWORD": CM_PASSWORD[1], "SLACK_TOKEN": CM_TOKEN[1]}
    stack.apis().core.patch_namespaced_config_map("api-config", stack.ns(NS), {"data": after})
    stack.kube.crash_image("registry.local/api:v2")
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "image": "registry.local/api:v2", "env": _env(1)}
                    ]
                }
            }
        }
    }
    stack.apis().apps.patch_namespaced_deployment("api", stack.ns(NS), patch)
    stack.kube.wait_for(lambda: revision(stack, "api") == "2", timeout=WAIT)


def _tables(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {
                name: json.dumps([list(map(str, row)) for row in conn.execute(select(table))])
                for name, table in meta.tables.items()
            }
    finally:
        engine.dispose()


def test_secrets_reach_no_message_record_log_or_export(
    stack: LoopbackStack, migrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _release(stack)
    alert = {
        "service": "api",
        "name": "HighErrorRate",
        "severity": "critical",
        "annotations": {
            "summary": f"token {ANNOTATION_TOKEN} leaked",
            "description": PEM,
            "api_key": ANNOTATION_KEYED,
        },
    }
    assert stack.post_alert("generic", alert).status_code == 200

    modal = open_modal(stack, "api")
    shown = json.dumps(modal)
    assert "DB_PASSWORD" in shown and "[redacted]" in shown  # a secret changed, not its value
    before = latest_rollback_id(stack)
    resp = stack.driver.submit_view(
        callback_id=action_ids.REQUEST_MODAL,
        user_id=ALICE,
        private_metadata=modal["private_metadata"],
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: f"key {REASON_KEY} in logs"}},
    )
    assert resp.status_code == 200
    assert before is None
    wait_until(lambda: latest_rollback_id(stack), timeout=WAIT)
    wait_state(stack, 1, "done")
    assert said(stack, "rolled back")
    assert stack.services is not None
    exports = [stack.services.queries.postmortem(1, fmt)[1] for fmt in ("md", "json")]

    tables = _tables(migrated_url)
    slack = json.dumps([c["args"] for c in stack.slack.calls]) + json.dumps(
        stack.slack.uploads, default=str
    )
    places = {
        **{f"table {name}": text for name, text in tables.items() if name != "snapshots"},
        "slack": slack,
        "logs": caplog.text,
        "md export": exports[0],
        "json export": exports[1],
    }
    for secret in NEVER_SHOWN:
        for where, text in places.items():
            assert secret not in text, f"{secret!r} found in {where}"
    # What restore needs is kept where only restore reads it.
    assert CM_PASSWORD[1] in tables["snapshots"] and ENV_PASSWORD[1] in tables["snapshots"]
    assert "[redacted]" in tables["timeline_events"] or "[redacted]" in tables["rollbacks"]


# -- people's text and the bot's own secrets ---------------------------------------------

BEARER = "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload-77.sig"
BEARER_TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload-77.sig"
BASIC = "dXNlcjpzM2NyZXQtYmFzaWM="  # user:s3cret-basic
NOTE_PASSWORD = "note-hunter2-55"
SHORTCUT_TOKEN = "xoxb-5555-shortcut-abcdef"
SHORTCUT_CM = "cm-value-from-a-paste-66"
REASON_PASSWORD = "reason-pw-hunter-44"
MITIGATED_SECRET = "mitigated-secret-value-33"
# The bot's own secrets, written into alerts and notes as someone might paste them.
OWN = [SIGNING_SECRET, ALERT_TOKEN, BOT_TOKEN, APP_TOKEN]

PASTED = [
    BEARER_TOKEN,
    BASIC,
    NOTE_PASSWORD,
    SHORTCUT_TOKEN,
    SHORTCUT_CM,
    REASON_PASSWORD,
    MITIGATED_SECRET,
    *OWN,
]


def _cli_exports(migrated_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> str:
    from rollback_bot.cli import main

    monkeypatch.setenv("DATABASE_URL", migrated_url)
    capsys.readouterr()
    out = []
    for fmt in ("md", "json"):
        assert main(["export", "INC-1", "--format", fmt]) == 0
        out.append(capsys.readouterr().out)
    return "\n".join(out)


def test_pasted_secrets_in_alerts_notes_reasons_and_the_bots_own_never_come_out(
    stack: LoopbackStack,
    migrated_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    alert = {
        "service": "api",
        "name": "HighErrorRate",
        "severity": "critical",
        "annotations": {
            "summary": f"webhook signed with {SIGNING_SECRET}, bot token {BOT_TOKEN}",
            "description": f"curl -H '{BEARER}' -H 'Authorization: Basic {BASIC}'",
            "authorization": f"Basic {BASIC}",  # a header kept under its own name
        },
    }
    assert stack.post_alert("generic", alert).status_code == 200
    wait_until(lambda: stack.slack.messages(CHANNEL), timeout=WAIT)

    # A note, a pasted message added by the shortcut, a request reason, a mitigation reason.
    stack.driver.command(
        f"note INC-1 DB_PASSWORD={NOTE_PASSWORD} and {ALERT_TOKEN}, {BEARER}",
        user_id=ALICE,
        channel_id=CHANNEL,
    )
    wait_until(lambda: "Added to the timeline of INC-1" in json.dumps(stack.slack.ephemerals()))
    pasted = stack.slack.post_as_user(
        ALICE,
        CHANNEL,
        f"from the pod: SLACK_BOT_TOKEN={SHORTCUT_TOKEN}\nAPI_KEY: {SHORTCUT_CM} app {APP_TOKEN}",
    )
    stack.driver.message_shortcut(
        callback_id="add_to_timeline", user_id=ALICE, channel_id=CHANNEL, message_ts=pasted["ts"]
    )
    wait_until(
        lambda: json.dumps(stack.slack.ephemerals()).count("Added to the timeline of INC-1") == 2
    )
    stack.driver.command(
        f'api --reason "password: {REASON_PASSWORD}"', user_id=ALICE, channel_id=CHANNEL
    )
    stack.driver.command(
        f"mitigated INC-1 rotated SECRET_VALUE={MITIGATED_SECRET}",
        user_id=ALICE,
        channel_id=CHANNEL,
    )
    wait_until(lambda: "declared mitigated" in json.dumps(stack.slack.responses), timeout=WAIT)
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        kinds = [e.kind for e in uow.timeline.list_for_incident(incident_id=1)]
    assert kinds.count("note.added") == 2 and "incident.mitigated" in kinds

    tables = _tables(migrated_url)
    slack = json.dumps(
        [[c["args"] for c in stack.slack.calls], stack.slack.responses, stack.slack.views],
        default=str,
    )
    places = {
        **{f"table {name}": text for name, text in tables.items() if name != "snapshots"},
        "slack": slack,
        "logs": caplog.text,
        "cli export": _cli_exports(migrated_url, monkeypatch, capsys),
    }
    for secret in PASTED:
        for where, text in places.items():
            assert secret not in text, f"{secret!r} found in {where}"
    assert "DB_PASSWORD=[redacted]" in tables["timeline_events"]
