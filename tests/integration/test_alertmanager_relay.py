"""The real Alertmanager in front of the bot: alerts posted to its API v2 reach
the bot through its own grouping and webhook, become Slack messages, resolve,
can be silenced from Slack, and can start (or be stopped from starting) an
automatic rollback on the emulator."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import yaml

from rollback_bot.slack.ui import action_ids
from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import ALICE, CATALOG, CHANNEL, FAST_SLACK, release
from tests.support import alertmanager as am

alertmanager_factory = am.alertmanager_factory
TOKEN = "am-webhook-token"
SEARCH_CHANNEL = "C0SEARCH"


def _catalog(alertmanager_url: str) -> dict[str, Any]:
    catalog = copy.deepcopy(CATALOG)
    catalog["alertmanager_url"] = alertmanager_url
    checkout, search = catalog["services"]
    for service, seconds in ((checkout, 120), (search, 1)):
        service["policy"]["automation"] = True
        service["triggers"] = [
            {"name": "errors", "alert": "HighErrorRate", "severity": "critical",
             "countdown_seconds": seconds},
        ]  # fmt: skip
    return catalog


def _point_at(manager: am.AlertmanagerProcess, webhook_url: str) -> None:
    """Re-target the webhook and reload: the bot's port is known only once it runs,
    and the bot's catalog needs Alertmanager's address first."""
    config = manager._config  # the harness's config file
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    webhook = data["receivers"][0]["webhook_configs"][0]
    webhook["url"] = webhook_url
    webhook["http_config"] = {"authorization": {"credentials": TOKEN}}
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    requests.post(f"{manager.url}/-/reload", timeout=10).raise_for_status()


@pytest.fixture
def wired(
    alertmanager_factory: Callable[..., am.AlertmanagerProcess], migrated_url: str
) -> Iterator[tuple[LoopbackStack, am.AlertmanagerProcess]]:
    manager = alertmanager_factory(
        webhook_url="http://127.0.0.1:9/unused", group_by=("alertname", "service")
    )
    with LoopbackStack(
        slack_channel_rate=FAST_SLACK,
        catalog=_catalog(manager.url),
        database_url=migrated_url,
        ready_delay=0.05,
        alert_token=TOKEN,
    ) as stack:
        _point_at(manager, f"{stack.url}/alerts/alertmanager")
        yield stack, manager


def _alert(
    name: str, service: str, *, resolved: bool = False, severity: str = "critical"
) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    alert: dict[str, Any] = {
        "labels": {"alertname": name, "service": service, "severity": severity},
        "annotations": {"summary": f"{name} on {service}", "runbook_url": "https://runbooks/x"},
        "startsAt": (now - timedelta(minutes=2)).isoformat(),
        "generatorURL": "http://prometheus.local/graph",
    }
    if resolved:
        alert["endsAt"] = (now - timedelta(seconds=1)).isoformat()
    return alert


def _message(stack: LoopbackStack, channel: str, *words: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: next(
            (m for m in stack.slack.messages(channel) if all(w in m["text"] for w in words)),
            None,
        ),
        timeout=30,
    )
    return found


def _button(stack: LoopbackStack, channel: str, ts: str, action_id: str) -> dict[str, Any]:
    return next(b for b in stack.slack.buttons(channel, ts) if b["action_id"] == action_id)


def _state(stack: LoopbackStack) -> str | None:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        row = uow.rollbacks.get(id=1)
        return row.state if row else None


def test_message_resolves_and_silence_from_slack_is_in_alertmanager(
    wired: tuple[LoopbackStack, am.AlertmanagerProcess],
) -> None:
    stack, manager = wired
    manager.post_alerts([_alert("DiskFull", "checkout", severity="warning")])
    firing = _message(stack, CHANNEL, "FIRING", "DiskFull")
    assert "1 of 1 firing" in firing["text"]

    manager.post_alerts([_alert("DiskFull", "checkout", severity="warning", resolved=True)])
    wait_until(lambda: "RESOLVED" in stack.slack.message(CHANNEL, firing["ts"])["text"], timeout=30)

    manager.post_alerts([_alert("CertExpiring", "search", severity="warning")])
    cert = _message(stack, SEARCH_CHANNEL, "FIRING", "CertExpiring")
    silence = _button(stack, SEARCH_CHANNEL, cert["ts"], action_ids.SILENCE_1H)
    resp = stack.driver.click(
        action_id=action_ids.SILENCE_1H, value=silence["value"], user_id=ALICE,
        channel_id=SEARCH_CHANNEL, message_ts=cert["ts"],
    )  # fmt: skip
    assert resp.status_code == 200

    silences = wait_until(manager.silences, timeout=15)
    [made] = silences
    assert made["createdBy"] == f"slack:{ALICE}"
    assert made["status"]["state"] == "active"
    matchers = {m["name"]: m["value"] for m in made["matchers"]}
    assert matchers["alertname"] == "CertExpiring" and matchers["service"] == "search"
    assert stack.services is not None
    services = stack.services

    def silenced() -> list[Any]:
        # Recorded once Alertmanager accepted the silence, so just after it is visible there.
        with services.uow(read_only=True) as uow:
            events = uow.timeline.list_for_service(service="search")
        return [e for e in events if e.kind == "alert.silenced"]

    recorded = wait_until(silenced, timeout=10)
    assert [e.actor for e in recorded] == [ALICE]
    assert made["id"] in recorded[0].summary
    wait_until(
        lambda: manager.alerts() and manager.alerts()[0]["status"]["silencedBy"] == [made["id"]],
        timeout=15,
    )


def test_alertmanager_alert_to_automatic_rollback(
    wired: tuple[LoopbackStack, am.AlertmanagerProcess],
) -> None:
    stack, manager = wired
    release(stack, "search")
    manager.post_alerts([_alert("HighErrorRate", "search")])
    _message(stack, SEARCH_CHANNEL, "Automatic rollback of search")

    def image() -> str:
        spec = stack.deployment("shop", "search")["spec"]["template"]["spec"]
        return str(spec["containers"][0]["image"])

    wait_until(lambda: image() == "registry.local/search:v1", timeout=30)
    # The rollback helped: the alert resolves, and the health gate (which asks
    # this Alertmanager for firing alerts of the service) lets it finish.
    manager.post_alerts([_alert("HighErrorRate", "search", resolved=True)])
    wait_until(lambda: _state(stack) == "done", timeout=30)


def test_alertmanager_alert_countdown_cancelled_by_a_person(
    wired: tuple[LoopbackStack, am.AlertmanagerProcess],
) -> None:
    stack, manager = wired
    release(stack)
    manager.post_alerts([_alert("HighErrorRate", "checkout")])
    countdown = _message(stack, CHANNEL, "Automatic rollback of checkout")
    cancel = _button(stack, CHANNEL, countdown["ts"], action_ids.CANCEL_COUNTDOWN)
    stack.driver.click(
        action_id=action_ids.CANCEL_COUNTDOWN, value=cancel["value"], user_id=ALICE,
        channel_id=CHANNEL, message_ts=countdown["ts"],
    )  # fmt: skip

    wait_until(lambda: _state(stack) == "aborted", timeout=15)
    image = stack.deployment("shop", "checkout")["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "registry.local/checkout:v2"
