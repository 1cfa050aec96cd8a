"""Trigger rules end to end: a critical alert starts a visible, cancellable
countdown that ends in a real rollback (on both backends); a warning only suggests;
a polled Prometheus query acts like an alert."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from rollback_bot.alerts.poller import QueryPoller
from rollback_bot.slack.ui import action_ids
from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import (
    ALICE,
    CAROL,
    CATALOG,
    CHANNEL,
    FAST_SLACK,
    MakeStack,
    alertmanager_payload,
    release,
)

SEARCH_CHANNEL = "C0SEARCH"


def automated_catalog() -> dict[str, Any]:
    catalog = copy.deepcopy(CATALOG)
    checkout, search = catalog["services"]
    checkout["policy"]["automation"] = True
    checkout["triggers"] = [
        {"name": "errors-critical", "alert": "HighErrorRate", "severity": "critical",
         "countdown_seconds": 120},
        {"name": "slow", "alert": "SlowRequests", "severity": "warning"},
    ]  # fmt: skip
    search["policy"]["automation"] = True
    search["triggers"] = [
        {"name": "errors-critical", "alert": "HighErrorRate", "severity": "critical",
         "countdown_seconds": 1},
        {"name": "error-ratio", "query": "sum(rate(errors[5m]))", "op": "gt",
         "threshold": 0.05, "severity": "critical", "countdown_seconds": 120,
         "interval_seconds": 30},
    ]  # fmt: skip
    return catalog


@pytest.fixture
def auto(make_stack: MakeStack, migrated_url: str) -> Iterator[LoopbackStack]:
    with make_stack(
        slack_channel_rate=FAST_SLACK,
        catalog=automated_catalog(),
        database_url=migrated_url,
        ready_delay=0.05,
    ) as s:
        yield s


def _with_button(stack: LoopbackStack, channel: str, action_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for message in stack.slack.messages(channel):
            if any(
                b.get("action_id") == action_id for b in stack.slack.buttons(channel, message["ts"])
            ):
                return message
        return None

    found: dict[str, Any] = wait_until(find, timeout=15)
    return found


def _state(stack: LoopbackStack, rollback_id: int = 1) -> str | None:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        row = uow.rollbacks.get(id=rollback_id)
        return row.state if row else None


def _kinds(stack: LoopbackStack) -> list[tuple[str, str]]:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        return [(e.kind, e.actor) for e in uow.timeline.list_for_incident(incident_id=1)]


def _image(stack: LoopbackStack, name: str) -> str:
    return str(stack.deployment("shop", name)["spec"]["template"]["spec"]["containers"][0]["image"])


def test_countdown_is_visible_and_a_person_cancels_it(auto: LoopbackStack) -> None:
    release(auto)
    assert auto.post_alert("alertmanager", alertmanager_payload()).status_code == 200

    countdown = _with_button(auto, CHANNEL, action_ids.CANCEL_COUNTDOWN)
    assert "Automatic rollback of checkout to revision 1 in" in countdown["text"]
    texts = [b["text"]["text"] for b in auto.slack.buttons(CHANNEL, countdown["ts"])]
    assert "Cancel" in texts and "Roll back now" in texts
    assert _state(auto) == "scheduled"

    # Someone outside the policy cannot cancel; Alice can.
    driver = auto.driver
    button = next(
        b for b in auto.slack.buttons(CHANNEL, countdown["ts"])
        if b["action_id"] == action_ids.CANCEL_COUNTDOWN
    )  # fmt: skip
    cancel = {"action_id": action_ids.CANCEL_COUNTDOWN, "channel_id": CHANNEL,
              "message_ts": countdown["ts"], "value": button["value"]}  # fmt: skip
    assert driver.click(user_id=CAROL, **cancel).status_code == 200
    assert wait_until(lambda: auto.slack.ephemerals(CAROL), timeout=10)
    assert _state(auto) == "scheduled"
    assert driver.click(user_id=ALICE, **cancel).status_code == 200
    wait_until(lambda: _state(auto) == "aborted", timeout=10)

    assert _image(auto, "checkout") == "registry.local/checkout:v2"  # nothing rolled back
    kinds = _kinds(auto)
    assert any(k == "countdown.started" for k, _ in kinds)
    assert ("rollback.aborted", ALICE) in kinds
    wait_until(
        lambda: "aborted" in auto.slack.message(CHANNEL, countdown["ts"])["text"], timeout=10
    )


def test_countdown_cancels_itself_when_the_alert_resolves(auto: LoopbackStack) -> None:
    release(auto)
    auto.post_alert("alertmanager", alertmanager_payload())
    wait_until(lambda: _state(auto) == "scheduled", timeout=10)

    auto.post_alert("alertmanager", alertmanager_payload(status="resolved"))
    wait_until(lambda: _state(auto) == "aborted", timeout=10)
    assert any(kind == "countdown.cancelled" for kind, _ in _kinds(auto))
    assert _image(auto, "checkout") == "registry.local/checkout:v2"


def test_countdown_elapses_into_a_real_rollback(auto: LoopbackStack) -> None:
    release(auto, "search")
    auto.post_alert("alertmanager", alertmanager_payload("search"))
    _with_button(auto, SEARCH_CHANNEL, action_ids.CANCEL_COUNTDOWN)  # shown before it runs

    wait_until(lambda: _state(auto) == "done", timeout=30)
    assert _image(auto, "search") == "registry.local/search:v1"
    kinds = [k for k, _ in _kinds(auto)]
    assert kinds.index("countdown.started") < kinds.index("countdown.elapsed")
    assert "rollback.done" in kinds


def test_warning_rule_only_suggests(auto: LoopbackStack) -> None:
    release(auto)
    payload = alertmanager_payload()
    alert = payload["alerts"][0]
    alert["labels"] = {**alert["labels"], "alertname": "SlowRequests", "severity": "warning"}
    alert["fingerprint"] = "fp-slow"
    assert auto.post_alert("alertmanager", payload).status_code == 200

    group = wait_until(
        lambda: next((m for m in auto.slack.messages(CHANNEL) if "SlowRequests" in m["text"]), None)
    )

    def suggestion() -> dict[str, Any] | None:
        for reply in auto.slack.thread(CHANNEL, group["ts"]):
            if "suggests a rollback" in reply["text"]:
                return reply
        return None

    reply = wait_until(suggestion, timeout=10)
    assert action_ids.ROLL_BACK in json.dumps(reply["blocks"])
    assert _state(auto) is None  # no rollback exists


class FakePrometheus:
    """Answers every instant query with the number in ``value``."""

    def __init__(self) -> None:
        self.value = "0.01"
        self.queries: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query).get("query", [""])[0]
                fake.queries.append(query)
                body = json.dumps({"status": "success", "data": {"resultType": "vector",
                    "result": [{"metric": {}, "value": [0, fake.value]}]}}).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def test_polled_query_starts_and_then_cancels_a_countdown(auto: LoopbackStack) -> None:
    release(auto, "search")
    prometheus = FakePrometheus()
    try:
        assert auto.services is not None
        poller = QueryPoller(
            catalog=auto.catalog,
            relay=auto.services.relay,
            clock=auto.services.clock,
            default_prometheus_url=prometheus.url,
        )
        start = datetime.now(UTC)
        [quiet] = poller.poll_due(start)
        assert (quiet.value, quiet.holds) == (0.01, False)
        assert auto.slack.messages(SEARCH_CHANNEL) == []  # nothing held, nothing said
        assert poller.poll_due(start + timedelta(seconds=29)) == []  # not due yet

        prometheus.value = "0.2"
        [breach] = poller.poll_due(start + timedelta(seconds=30))
        assert breach.holds
        countdown = _with_button(auto, SEARCH_CHANNEL, action_ids.CANCEL_COUNTDOWN)
        assert "Automatic rollback of search" in countdown["text"]

        prometheus.value = "0.0"
        poller.poll_due(start + timedelta(seconds=60))
        wait_until(lambda: _state(auto) == "aborted", timeout=10)
        assert prometheus.queries == ["sum(rate(errors[5m]))"] * 3
        assert _image(auto, "search") == "registry.local/search:v2"
    finally:
        prometheus.stop()
