"""What the execution tests share: a catalog with one service per strategy, the
objects each strategy needs in the emulator, an Alertmanager stand-in for the
health gate, and the slash-command path from "/rollback x" to a rollback id.

Everything goes through the running bot over HTTP (signed requests); the tests
read the database and the emulator only to observe.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from rollback_bot.slack.ui import action_ids
from rollback_bot.storage.models import Rollback, TimelineEvent
from sandbox.httpd import QuietThreadingHTTPServer
from sandbox.stack import LoopbackStack, deployment_manifest, wait_until
from tests.e2e.conftest import FAST_SLACK, MakeStack

NS = "shop"
CHANNEL = "C0EXEC"
ALICE, BOB = "U0ALICE", "U0BOB"
WAIT = 30.0  # generous: a loaded 2-core machine must not make these flaky


class FakeAlertmanager:
    """Alertmanager API v2 ``GET /api/v2/alerts``, answering what the test says is firing."""

    def __init__(self) -> None:
        self.firing: dict[str, list[str]] = {}  # service label -> alert names
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                wanted = {
                    f.split("=", 1)[0]: f.split("=", 1)[1].strip('"')
                    for f in query.get("filter", [])
                }
                names = owner.firing.get(wanted.get("service", ""), [])
                body = json.dumps(
                    [
                        {
                            "labels": {"alertname": n, "service": wanted.get("service")},
                            "status": {"state": "active"},
                        }
                        for n in names
                    ]
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = QuietThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeAlertmanager:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _policy() -> dict[str, Any]:
    return {"requesters": {"users": [ALICE]}, "approvers": {"users": [BOB]}}


def catalog(
    alertmanager_url: str, *, step_seconds: float = 0.1, timeout_seconds: float = 20
) -> dict[str, Any]:
    """Staging services (no approval needed), one per strategy."""
    health = {
        "timeout_seconds": timeout_seconds,
        "wait_seconds": 0,
        "alertmanager_url": alertmanager_url,
    }
    common = {
        "namespace": NS,
        "environment": "staging",
        "channel": CHANNEL,
        "policy": _policy(),
        "health": health,
        "stable_window_seconds": 0,  # an earlier revision that ran alert-free is a target
    }
    return {
        "services": [
            {
                "name": "api",
                "deployment": "api",
                "match": {"service": "api"},
                "flags": [{"name": "new-pricing", "configmap": "api-flags", "key": "NEW_PRICING"}],
                **common,
            },
            {
                "name": "web",
                "deployment": "web-blue",
                "match": {"service": "web"},
                "strategy": "blue-green",
                "blue_green": {
                    "service": "web",
                    "slots": {"blue": "web-blue", "green": "web-green"},
                },
                **common,
            },
            {
                "name": "shopfront",
                "deployment": "shopfront",
                "match": {"service": "shopfront"},
                "strategy": "gradual",
                "gradual": {
                    "stable": "shopfront",
                    "canary": "shopfront-canary",
                    "step_seconds": step_seconds,
                },
                **common,
            },
            {
                "name": "cart",
                "deployment": "cart",
                "match": {"service": "cart"},
                "strategy": "gradual",
                "gradual": {
                    "stable": "cart",
                    "canary": "cart-canary",
                    "driver": "ingress",
                    "canary_ingress": "cart-canary",
                    "step_seconds": step_seconds,
                },
                **common,
            },
        ]
    }


def running_alertmanager() -> Iterator[FakeAlertmanager]:
    """Body of each test module's ``alertmanager`` fixture."""
    am = FakeAlertmanager().start()
    yield am
    am.stop()


def running_stack(
    make_stack: MakeStack,
    migrated_url: str,
    alertmanager: FakeAlertmanager,
    **catalog_options: Any,
) -> Iterator[LoopbackStack]:
    """Body of each test module's ``stack`` fixture (on the test's backend)."""
    with make_stack(
        slack_channel_rate=FAST_SLACK,
        catalog=catalog(alertmanager.url, **catalog_options),
        database_url=migrated_url,
        ready_delay=0.05,
    ) as s:
        yield s


# -- arranging the cluster ------------------------------------------------------------


def create(stack: LoopbackStack, obj: dict[str, Any]) -> None:
    stack.create(NS, obj)


def settled(stack: LoopbackStack, name: str) -> None:
    def done() -> bool:
        obj = stack.kube.get("deployments", NS, name) or {}
        status = obj.get("status") or {}
        want = obj["spec"]["replicas"]
        return (
            status.get("observedGeneration") == obj["metadata"]["generation"]
            and int(status.get("availableReplicas") or 0) == want
            and int(status.get("updatedReplicas") or 0) == want
            and int(status.get("replicas") or 0) == want
        )

    stack.kube.wait_for(done, timeout=WAIT)


def release_instant(stack: LoopbackStack, *, configmap: bool = True) -> None:
    """api v1 with config A, then v2 with config B (v2 crashes)."""
    if configmap:
        create(stack, _configmap("api-config", {"MODE": "safe"}))
    stack.deploy(NS, deployment_manifest("api", "registry.local/api:v1", configmap="api-config"))
    settled(stack, "api")
    if configmap:
        stack.apis().core.patch_namespaced_config_map(
            "api-config", stack.ns(NS), {"data": {"MODE": "fast"}}
        )
    stack.kube.crash_image("registry.local/api:v2")
    stack.set_image(NS, "api", "registry.local/api:v2")
    stack.kube.wait_for(lambda: revision(stack, "api") == "2", timeout=WAIT)


def release_bluegreen(stack: LoopbackStack, *, green_replicas: int = 2) -> None:
    """blue (old, good) and green (new, live): the Service selects green."""
    for slot, replicas in (("blue", 2), ("green", green_replicas)):
        labels = {"app": "web", "slot": slot}
        create(
            stack,
            deployment_manifest(
                f"web-{slot}", f"registry.local/web:{slot}", replicas=replicas, labels=labels
            ),
        )
        if replicas:
            settled(stack, f"web-{slot}")
    create(
        stack,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web", "slot": "green"}, "ports": [{"port": 80}]},
        },
    )


def release_gradual(stack: LoopbackStack, name: str, *, ingress: bool = False) -> None:
    """stable with 5 replicas, canary with 5: half the traffic on the canary.

    By replicas the steps are then 50% (5 canary), 20% (2), 5% (1), 0% (0).
    """
    create(
        stack,
        deployment_manifest(
            name, f"registry.local/{name}:v1", replicas=5, labels={"track": "stable"}
        ),
    )
    create(
        stack,
        deployment_manifest(
            f"{name}-canary", f"registry.local/{name}:v2", replicas=5, labels={"track": "canary"}
        ),
    )
    settled(stack, name)
    settled(stack, f"{name}-canary")
    if ingress:
        create(stack, _ingress(f"{name}-canary", f"{name}-canary", weight="50"))


def _configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def _ingress(name: str, backend: str, *, weight: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "annotations": {
                "nginx.ingress.kubernetes.io/canary": "true",
                "nginx.ingress.kubernetes.io/canary-weight": weight,
            },
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "cart.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": backend, "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


# -- observing ---------------------------------------------------------------------------


def revision(stack: LoopbackStack, name: str) -> str | None:
    obj = stack.kube.get("deployments", NS, name) or {}
    return (obj.get("metadata", {}).get("annotations") or {}).get(
        "deployment.kubernetes.io/revision"
    )


def image(stack: LoopbackStack, name: str) -> str:
    dep = stack.deployment(NS, name)
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def replicas(stack: LoopbackStack, name: str) -> int:
    return int(stack.deployment(NS, name)["spec"]["replicas"])


def rollback(stack: LoopbackStack, rollback_id: int) -> Rollback:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        row = uow.rollbacks.get(id=rollback_id)
    assert row is not None
    return row


def wait_state(stack: LoopbackStack, rollback_id: int, *states: str) -> Rollback:
    def reached() -> Rollback | None:
        row = rollback(stack, rollback_id)
        return row if row.state in states else None

    try:
        return wait_until(reached, timeout=WAIT)
    except TimeoutError:
        row = rollback(stack, rollback_id)
        raise AssertionError(
            f"R-{rollback_id} is {row.state}, not {states}: "
            + "; ".join(e.summary for e in events(stack, rollback_id))
        ) from None


def manual_changes(stack: LoopbackStack, service: str = "api") -> list[TimelineEvent]:
    """The watcher's ``kube.manual_change`` entries of a service."""
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        return [
            e
            for e in uow.timeline.list_for_service(service=service)
            if e.kind == "kube.manual_change"
        ]


def incident_open(stack: LoopbackStack, service: str = "api") -> bool:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        return uow.incidents.open_for_service(service=service) is not None


def events(stack: LoopbackStack, rollback_id: int) -> list[TimelineEvent]:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        from sqlalchemy import select

        stmt = (
            select(TimelineEvent)
            .where(TimelineEvent.rollback_id == rollback_id)
            .order_by(TimelineEvent.id)
        )
        return list(uow.session.scalars(stmt))


def writes(stack: LoopbackStack, name: str, *, dry_run: bool | None = None) -> list[dict[str, Any]]:
    """The emulator's audit of writes to ``name`` (PATCH/PUT), optionally only (non-)dry runs."""
    found = [
        a
        for a in stack.kube.audit
        if a.get("name") == name and a.get("verb") in ("patch", "update")
    ]
    if dry_run is not None:
        found = [a for a in found if bool(a.get("dryRun")) is dry_run]
    return found


def landed(stack: LoopbackStack, name: str) -> list[dict[str, Any]]:
    """The bot's (non-dry-run) writes to ``name`` that took effect. On the real plane a
    controller's status write between the bot's read and its patch (which carries the
    resourceVersion it read) gets the patch a 409, retried; the emulator has no controller
    lag. Any write that did not land must be such a conflict."""
    found = writes(stack, name, dry_run=False)
    refused = [w for w in found if (w.get("code") or 200) >= 400]
    assert all(w["code"] == 409 for w in refused), refused
    return [w for w in found if w not in refused]


# -- acting through Slack -------------------------------------------------------------------


def request(stack: LoopbackStack, text: str, *, user: str = ALICE, force_bad: bool = False) -> int:
    """``/rollback <text>``, then submit the confirmation modal; the new rollback's id.

    ``force_bad`` ticks the modal's "known bad: roll back anyway" override.
    """
    before = latest_rollback_id(stack)
    modal = open_modal(stack, text, user=user)
    assert modal["callback_id"] == action_ids.REQUEST_MODAL, json.dumps(modal)[:500]
    values: dict[str, Any] = {action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "tests"}}
    if force_bad:
        values[action_ids.FORCE_BAD_BLOCK] = {
            action_ids.FORCE_BAD_INPUT: {
                "type": "checkboxes",
                "selected_options": [{"value": "force_bad"}],
            }
        }
    resp = stack.driver.submit_view(
        callback_id=action_ids.REQUEST_MODAL,
        user_id=user,
        private_metadata=modal["private_metadata"],
        values=values,
    )
    assert resp.status_code == 200
    return int(
        wait_until(
            lambda: (latest_rollback_id(stack) or 0) > (before or 0) and latest_rollback_id(stack),
            timeout=WAIT,
        )
    )


def open_modal(stack: LoopbackStack, text: str, *, user: str = ALICE) -> dict[str, Any]:
    """``/rollback <text>``: the modal as it ends up after the plan was read."""
    seen = len(stack.slack.views)
    resp = stack.driver.command(text, user_id=user, channel_id=CHANNEL)
    assert resp.status_code == 200
    update = wait_until(
        lambda: next((v for v in stack.slack.views[seen:] if v["op"] == "update"), None),
        timeout=WAIT,
    )
    return dict(update["view"])


def command_reply(stack: LoopbackStack, text: str, *, user: str = ALICE) -> str:
    """``/rollback <text>``: the ephemeral reply it got (acknowledgement or response)."""
    seen = len(stack.slack.responses)
    resp = stack.driver.command(text, user_id=user, channel_id=CHANNEL)
    assert resp.status_code == 200
    if resp.text.strip():
        body = resp.json()
        if body.get("text"):
            return str(body["text"])
    found = wait_until(lambda: stack.slack.responses[seen:], timeout=WAIT)
    return "\n".join(str(r.get("text", "")) + json.dumps(r.get("blocks") or []) for r in found)


def latest_rollback_id(stack: LoopbackStack) -> int | None:
    assert stack.services is not None
    from sqlalchemy import func, select

    with stack.services.uow(read_only=True) as uow:
        return uow.session.scalar(select(func.max(Rollback.id)))


def thread_text(stack: LoopbackStack) -> str:
    """Everything the bot said in the channel and its threads."""
    assert stack.services is not None
    stack.services.outbox.flush(timeout=10)
    lines = []
    for message in stack.slack.messages(CHANNEL):
        lines.append(message.get("text", "") + json.dumps(message.get("blocks") or []))
        for reply in stack.slack.thread(CHANNEL, message["ts"]):
            lines.append(reply.get("text", ""))
    return "\n".join(lines)


def button(message: dict[str, Any], action_id: str) -> dict[str, Any] | None:
    for block in message.get("blocks") or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return dict(element)
    return None


def click(stack: LoopbackStack, action_id: str, *, user: str = ALICE) -> None:
    """Click ``action_id`` on the bot's message that carries it (waiting for it to appear)."""

    def find() -> tuple[dict[str, Any], dict[str, Any]] | None:
        assert stack.services is not None
        stack.services.outbox.flush(timeout=5)
        for message in reversed(stack.slack.messages(CHANNEL)):
            found = button(message, action_id)
            if found:
                return message, found
        return None

    message, found = wait_until(find, timeout=WAIT)
    resp = stack.driver.click(
        action_id=action_id,
        value=found["value"],
        user_id=user,
        channel_id=CHANNEL,
        message_ts=message["ts"],
    )
    assert resp.status_code == 200


def said(stack: LoopbackStack, text: str) -> bool:
    """Wait until the bot has said ``text`` in the channel or a thread (posts are queued)."""
    try:
        return bool(wait_until(lambda: text in thread_text(stack), timeout=WAIT, interval=0.2))
    except TimeoutError:
        raise AssertionError(f"never said {text!r}:\n{thread_text(stack)[-3000:]}") from None


def quiet(stack: LoopbackStack, *, still: float = 0.5) -> str:
    """The emulator's dump once the controllers stopped changing anything for ``still`` s."""
    import time

    deadline = time.monotonic() + WAIT
    last, since = stack.kube.dump(), time.monotonic()
    while time.monotonic() - since < still:
        if time.monotonic() > deadline:
            raise AssertionError("the cluster never settled")
        time.sleep(0.05)
        now = stack.kube.dump()
        if now != last:
            last, since = now, time.monotonic()
    return last
