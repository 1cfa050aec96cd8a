"""/healthz and /metrics tell an operator the truth about what happened."""

from __future__ import annotations

import re

from sandbox.stack import LoopbackStack
from tests.e2e.conftest import alertmanager_payload, release
from tests.e2e.test_slack_commands import request_via_command, wait_state


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # exposition order
    pattern = (
        rf"^{re.escape(name)}" + (rf"\{{{re.escape(wanted)}\}}" if wanted else "") + r" (\S+)$"
    )
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{name}{{{wanted}}} not in /metrics"
    return float(found.group(1))


def test_health_and_metrics_follow_alerts_and_rollbacks(stack: LoopbackStack) -> None:
    http = stack.http
    assert http.get(f"{stack.url}/healthz", timeout=5).json() == {"ok": True}

    assert stack.post_alert("alertmanager", alertmanager_payload()).status_code == 200
    assert stack.post_alert("nagios", {}).status_code == 404
    broken = http.post(
        f"{stack.url}/alerts/generic",
        data=b"{not json",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {stack.alert_token}",
        },
        timeout=5,
    )
    assert broken.status_code == 400 and "not JSON" in broken.json()["error"]

    release(stack, "search", bad=False)
    request_via_command(stack, "search")  # staging: no approval needed
    wait_state(stack, 1, "done")

    response = http.get(f"{stack.url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    assert _metric(text, "rollback_bot_alerts_received_total", source="alertmanager") == 1
    assert (
        _metric(
            text, "rollback_bot_alert_payloads_rejected_total", source="generic", reason="not_json"
        )
        == 1
    )
    for state in ("approved", "executing", "verifying", "done"):
        assert _metric(text, "rollback_bot_rollback_transitions_total", state=state) == 1
    assert "rollback_bot_alert_ingest_seconds_count 1.0" in text
