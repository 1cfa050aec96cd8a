"""Unauthenticated alerts are shown but cannot act; /metrics can require a token.

Without ALERT_WEBHOOK_TOKEN anyone who reaches the port can post an alert: it
is shown in Slack (escaped), but no trigger rule runs on it, so it can neither
start an automatic rollback nor cancel a countdown by resolving. With the
token, a forged alert (no or a wrong token) is refused and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from rollback_bot.config import Settings
from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import CHANNEL, FAST_SLACK, alertmanager_payload, release
from tests.e2e.test_triggers_countdown import _state, automated_catalog

CRITICAL = {"service": "checkout", "name": "HighErrorRate", "severity": "critical", "value": 99}


@pytest.fixture
def open_stack(migrated_url: str, caplog: pytest.LogCaptureFixture) -> Iterator[LoopbackStack]:
    caplog.set_level(logging.WARNING, logger="rollback_bot.web.http")
    with LoopbackStack(
        slack_channel_rate=FAST_SLACK,
        catalog=automated_catalog(),
        database_url=migrated_url,
        ready_delay=0.05,
        alert_token="",
    ) as s:
        yield s


@pytest.fixture
def guarded(migrated_url: str) -> Iterator[LoopbackStack]:
    with LoopbackStack(
        slack_channel_rate=FAST_SLACK,
        catalog=automated_catalog(),
        database_url=migrated_url,
        ready_delay=0.05,
    ) as s:
        yield s


def test_without_the_token_a_critical_alert_is_shown_but_starts_nothing(
    open_stack: LoopbackStack, caplog: pytest.LogCaptureFixture
) -> None:
    setup = caplog.get_records("setup")
    assert any("ALERT_WEBHOOK_TOKEN is not set" in r.getMessage() for r in setup)  # said at start
    release(open_stack)
    resp = open_stack.post_alert("generic", CRITICAL)
    assert resp.status_code == 200
    assert resp.json()["automation"] == "off: ALERT_WEBHOOK_TOKEN is not set"
    resp = open_stack.post_alert("alertmanager", alertmanager_payload())
    assert resp.status_code == 200
    wait_until(
        lambda: any("FIRING" in m["text"] for m in open_stack.slack.messages(CHANNEL)), timeout=10
    )
    assert _state(open_stack) is None  # no rollback was requested or scheduled
    assert open_stack.services is not None
    with open_stack.services.uow(read_only=True) as uow:
        kinds = [e.kind for e in uow.timeline.list_for_incident(incident_id=1)]
    assert "countdown.started" not in kinds


def test_with_the_token_a_forged_resolve_cancels_no_countdown(guarded: LoopbackStack) -> None:
    release(guarded)
    assert guarded.post_alert("alertmanager", alertmanager_payload()).status_code == 200
    wait_until(lambda: _state(guarded) == "scheduled", timeout=10)

    for token in ("", "wrong"):
        forged = guarded.post_alert(
            "alertmanager", alertmanager_payload(status="resolved"), token=token
        )
        assert forged.status_code == 401
    assert _state(guarded) == "scheduled"

    # The real sender, with the token, still resolves it.
    assert guarded.post_alert("alertmanager", alertmanager_payload(status="resolved")).ok
    wait_until(lambda: _state(guarded) == "aborted", timeout=10)


def test_metrics_can_require_a_bearer_token(migrated_url: str) -> None:
    class Guarded(LoopbackStack):
        def settings(self) -> Settings:
            settings = super().settings()
            settings.metrics_token = type(settings.metrics_token)("m-token")
            return settings

    with Guarded(
        slack_channel_rate=FAST_SLACK,
        catalog=automated_catalog(),
        database_url=migrated_url,
        ready_delay=0.05,
    ) as stack:
        url = f"{stack.url}/metrics"
        assert stack.http.get(url, timeout=5).status_code == 401
        wrong = stack.http.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
        assert wrong.status_code == 401
        right = stack.http.get(url, headers={"Authorization": "Bearer m-token"}, timeout=5)
        assert right.status_code == 200 and "rollback_bot_" in right.text
