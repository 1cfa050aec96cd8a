"""Alert webhooks over HTTP into the running bot, and the Slack messages they produce."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import CATALOG, CHANNEL, FAST_SLACK, alertmanager_payload

# Slack, alerts and HTTP only: the real control plane would repeat the emulator run.
pytestmark = pytest.mark.kube_free

TOKEN = "alert-s3cret"


@pytest.fixture
def guarded(migrated_url: str) -> Iterator[LoopbackStack]:
    catalog = copy.deepcopy(CATALOG)
    catalog["fallback_channel"] = "C0FALLBACK"
    with LoopbackStack(
        slack_channel_rate=FAST_SLACK,
        catalog=catalog,
        database_url=migrated_url,
        ready_delay=0.05,
        alert_token=TOKEN,
    ) as s:
        yield s


def _group_messages(stack: LoopbackStack, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return [
        m for m in stack.slack.messages(channel) if "FIRING" in m["text"] or "RESOLVED" in m["text"]
    ]


@pytest.mark.parametrize(
    ("source", "body", "status", "reason"),
    [
        ("alertmanager", {"version": "4", "alerts": "nope"}, 422, "alerts"),
        ("alertmanager", [1, 2], 422, "body"),
        ("grafana", {"alerts": [{"labels": {}}]}, 422, "alertname"),
        ("generic", {"name": "X"}, 422, "service"),
        ("generic", {"service": "nosuch", "name": "X"}, 422, "unknown service"),
        ("generic", {"service": "checkout", "name": "X", "value": "high"}, 422, "value"),
        ("prometheus", {}, 404, "unknown alert source"),
    ],
)
def test_broken_payloads_get_4xx_with_the_reason(
    guarded: LoopbackStack, source: str, body: Any, status: int, reason: str
) -> None:
    resp = guarded.post_alert(source, body)
    assert resp.status_code == status
    assert reason in resp.json()["error"]


def test_non_json_and_wrong_token_are_refused(guarded: LoopbackStack) -> None:
    url = f"{guarded.url}/alerts/alertmanager"
    resp = guarded.http.post(
        url, data="not json", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert resp.status_code == 400 and "JSON" in resp.json()["error"]
    assert (
        guarded.post_alert("alertmanager", alertmanager_payload(), token="wrong").status_code == 401
    )
    assert guarded.post_alert("alertmanager", alertmanager_payload(), token="").status_code == 401
    assert guarded.slack.messages(CHANNEL) == []
    ok = guarded.post_alert("alertmanager", alertmanager_payload())
    assert ok.status_code == 200 and ok.json()["new"] == 1


def test_one_message_per_group_updated_in_place_then_resolved(guarded: LoopbackStack) -> None:
    first = alertmanager_payload()
    assert guarded.post_alert("alertmanager", first).json()["new"] == 1
    message = wait_until(lambda: _group_messages(guarded), timeout=10)[0]
    assert "HighErrorRate" in message["text"] and "1 of 1 firing" in message["text"]
    blocks = json.dumps(message["blocks"])
    assert "https://runbooks/checkout" in blocks and "Roll back" in blocks

    # Redelivery: nothing changes. A second alert joins the group: the same message is edited.
    again = guarded.post_alert("alertmanager", first).json()
    assert (again["new"], again["duplicates"], again["groups"]) == (0, 1, 0)
    second = alertmanager_payload()
    labels = {**second["alerts"][0]["labels"], "pod": "checkout-2"}
    second["alerts"][0] = {**second["alerts"][0], "fingerprint": "fp-checkout-2", "labels": labels}
    assert guarded.post_alert("alertmanager", second).json()["new"] == 1
    wait_until(lambda: "2 of 2 firing" in guarded.slack.message(CHANNEL, message["ts"])["text"])

    resolved = alertmanager_payload(status="resolved")
    ended = {"status": "resolved", "endsAt": "2026-11-25T09:10:00Z"}
    resolved["alerts"].append({**second["alerts"][0], **ended})
    assert guarded.post_alert("alertmanager", resolved).status_code == 200
    final = wait_until(
        lambda: (
            (m := guarded.slack.message(CHANNEL, message["ts"])) and "RESOLVED" in m["text"] and m
        ),
        timeout=10,
    )
    assert "✅" in final["text"] and "after" in final["text"]
    assert len(_group_messages(guarded)) == 1  # never a second message for the group
    with guarded.services.uow(read_only=True) as uow:
        incident = uow.incidents.get(id=1)
        assert incident is not None and incident.state == "resolved"


def test_grafana_and_generic_sources_and_the_fallback_channel(guarded: LoopbackStack) -> None:
    grafana = {
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "LatencyHigh", "service": "search", "severity": "warning"},
                "annotations": {"summary": "p99 above 2s"},
                "fingerprint": "gf-1",
                "values": {"B": 2.7},
                "dashboardURL": "http://grafana.local/d/search",
            }
        ],
    }
    assert guarded.post_alert("grafana", grafana).json()["new"] == 1
    generic = {"service": "checkout", "name": "QueueBacklog", "severity": "warning", "value": 1200}
    assert guarded.post_alert("generic", generic).json()["new"] == 1
    stray = alertmanager_payload("billing")
    summary = guarded.post_alert("alertmanager", stray).json()
    assert summary["unmatched"] == 1

    wait_until(lambda: any("LatencyHigh" in m["text"] for m in guarded.slack.messages("C0SEARCH")))
    wait_until(lambda: any("QueueBacklog" in m["text"] for m in guarded.slack.messages(CHANNEL)))
    fallback = wait_until(lambda: guarded.slack.messages("C0FALLBACK"))
    assert "no catalog service" in fallback[0]["text"]
    search = next(m for m in guarded.slack.messages("C0SEARCH") if "LatencyHigh" in m["text"])
    assert "http://grafana.local/d/search" in json.dumps(search["blocks"])


def test_the_dashboard_link_of_an_alertmanager_alert_sits_beside_its_runbook(
    stack: LoopbackStack,
) -> None:
    payload = alertmanager_payload()
    payload["alerts"][0]["annotations"]["dashboard_url"] = (
        "https://grafana.local/d/checkout?a=1&b=2"
    )
    assert stack.post_alert("alertmanager", payload).status_code == 200
    (card,) = wait_until(lambda: stack.slack.messages(CHANNEL), timeout=10)
    blocks = json.dumps(card["blocks"], ensure_ascii=False)
    assert "<https://runbooks/checkout|Runbook> · " in blocks
    assert "<https://grafana.local/d/checkout?a=1&amp;b=2|Dashboard>" in blocks
