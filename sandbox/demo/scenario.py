"""The demo's incident, step by step, against a started ``LoopbackStack``.

Every wait is bounded and names what it waited for, so a failed demo says which promise
of the product did not hold.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from rollback_bot.catalog import Catalog, parse_catalog
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.revisions import list_revisions
from rollback_bot.rollbacks.lifecycle import State
from rollback_bot.slack.ui import action_ids
from sandbox.demo.render import buttons, message_lines, plain, view_lines

if TYPE_CHECKING:
    from sandbox.demo.narration import Narrator
    from sandbox.stack import LoopbackStack

SAMPLE_CATALOG = "sample_catalog.yaml"
NAMESPACE = "shop"
SERVICE = "checkout"
CHANNEL = "C0ALERTS"
ALICE, BOB = "U0ALICE", "U0BOB"
GOOD_IMAGE = "registry.local/checkout:v1"
BAD_IMAGE = "registry.local/checkout:v2"
REASON = "5xx above 5% since v2 went out"
# Generous: a loaded laptop or CI runner must not turn a slow step into a failed demo.
STEP_TIMEOUT = 30.0
READY_DELAY = 0.3
# How long v1 must run alert-free before it counts as stable: 15 min in a real catalog,
# two seconds here so the demo shows the rule without the wait.
DEMO_STABLE_WINDOW = 2
CHANGE_CAUSE = "kubernetes.io/change-cause"

T = TypeVar("T")


class DemoFailed(Exception):
    """A step did not turn out as the product promises; the message says which."""


def sample_catalog(*, stable_window: int | None = None) -> Catalog:
    """The catalog shipped in the package, validated like any other.

    ``stable_window`` overrides every service's ``stable_window_seconds`` (the demo's).
    """
    text = resources.files("rollback_bot").joinpath(SAMPLE_CATALOG).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if stable_window is not None:
        for service in data["services"]:
            service["stable_window_seconds"] = stable_window
    return parse_catalog(data)


@dataclass
class Demo:
    """The incident, step by step; every wait is bounded and names what it waited for."""

    stack: LoopbackStack
    say: Narrator
    workdir: Path
    apis: KubeApis = field(init=False)

    def play(self) -> None:
        self.start()
        self.release_good()
        self.release_bad()
        alert, incident_id = self.fire_alert()
        request, rollback_id = self.request_rollback(alert)
        self.self_approval_refused(request)
        self.approve(request, rollback_id)
        self.after_rollback(request, alert)
        self.trace_on_the_cluster()
        self.second_roll_back(alert)
        self.alert_resolves(alert)
        self.postmortem(incident_id)

    # -- the steps -------------------------------------------------------------------
    def start(self) -> None:
        self.say.step("Starting the Kubernetes API emulator, the Slack stand-in and the bot")
        self.stack.start()
        self.apis = self.stack.apis()
        self.stack.kube.write_kubeconfig(self.workdir / "kubeconfig", namespace=NAMESPACE)
        services = ", ".join(self.stack.catalog.names)
        self.say.line(f"Kubernetes API  {self.stack.kube.url}")
        self.say.line(f"Slack Web API   {self.stack.slack.url}")
        self.say.line(f"bot             {self.stack.url}  (catalog: {services})")

    def release_good(self) -> None:
        from sandbox.stack import deployment_manifest

        self.say.step(f"Deploying {SERVICE} v1 ({GOOD_IMAGE}), a good release")
        self.stack.deploy(NAMESPACE, deployment_manifest(SERVICE, GOOD_IMAGE))
        self.stack.wait_available(NAMESPACE, SERVICE, timeout=STEP_TIMEOUT)
        self.say.kubernetes(kube_lines(self.stack, self.apis))
        self.say.line(
            f"v1 runs alert-free for {DEMO_STABLE_WINDOW} s (the demo's stable_window_seconds; "
            "15 min by default): that is the evidence that makes it a rollback target."
        )
        time.sleep(DEMO_STABLE_WINDOW + 0.5)

    def release_bad(self) -> None:
        self.say.step(f"Deploying {SERVICE} v2 ({BAD_IMAGE}), whose pods crash")
        self.stack.kube.crash_image(BAD_IMAGE)
        self.stack.set_image(NAMESPACE, SERVICE, BAD_IMAGE)
        _wait(lambda: crashing_pods(self.stack) > 0, f"the {BAD_IMAGE} pods to crash")
        self.say.kubernetes(kube_lines(self.stack, self.apis))
        self.say.line("The rolling update is stuck; the v1 pods keep serving what they can.")

    def fire_alert(self) -> tuple[dict[str, Any], int]:
        self.say.step("Alertmanager fires HighErrorRate for checkout")
        response = self.stack.post_alert("alertmanager", alertmanager_payload())
        self.say.line(f"POST {self.stack.url}/alerts/alertmanager -> HTTP {response.status_code}")
        if response.status_code != 200:
            raise DemoFailed(f"the alert endpoint answered {response.status_code}")
        alert = self._message_with(action_ids.ROLL_BACK, "the alert message")
        self.say.slack(f"#{CHANNEL}, the bot posted:", message_lines(alert))
        value = json.loads(self._button(alert, action_ids.ROLL_BACK)["value"])
        return alert, int(value["incident_id"])

    def request_rollback(self, alert: dict[str, Any]) -> tuple[dict[str, Any], int]:
        button = self._button(alert, action_ids.ROLL_BACK)
        self.say.step(f'Alice ({ALICE}) clicks "{button["text"]["text"]}"')
        views_before = len(self.stack.slack.views)
        self._click(action_ids.ROLL_BACK, button, ALICE, alert)
        view = _wait(
            lambda: next(
                (v["view"] for v in self.stack.slack.views[views_before:] if v["op"] == "update"),
                None,
            ),
            "the confirmation modal to show the plan",
        )
        self.say.slack("a modal opened for Alice:", view_lines(view))
        self.say.line(f'Alice types the reason "{REASON}" and submits.')
        seen = len(self.stack.slack.ephemerals(ALICE))
        response = self.stack.driver.submit_view(
            callback_id=action_ids.REQUEST_MODAL,
            user_id=ALICE,
            private_metadata=view["private_metadata"],
            values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: REASON}},
        )
        _expect_ok(response, "submitting the modal")
        request = self._message_with(action_ids.APPROVE, "the approval request")
        self.say.slack(f"#{CHANNEL}, the bot posted:", message_lines(request))
        self.say.slack("only Alice sees:", [self._new_ephemeral(ALICE, seen)])
        value = json.loads(self._button(request, action_ids.APPROVE)["value"])
        return request, int(value["rollback_id"])

    def self_approval_refused(self, request: dict[str, Any]) -> None:
        self.say.step('Alice clicks "Approve" on her own request (production: two-person rule)')
        seen = len(self.stack.slack.ephemerals(ALICE))
        self._click(action_ids.APPROVE, self._button(request, action_ids.APPROVE), ALICE, request)
        self.say.slack("only Alice sees:", [self._new_ephemeral(ALICE, seen)])

    def approve(self, request: dict[str, Any], rollback_id: int) -> None:
        self.say.step(f'Bob ({BOB}) clicks "Approve"')
        writes_before = len(self.stack.kube.audit)
        self._click(action_ids.APPROVE, self._button(request, action_ids.APPROVE), BOB, request)
        final = self._final_state(rollback_id)
        self.say.line(f"R-{rollback_id}: " + " → ".join(self._state_path(rollback_id)))
        if final != State.DONE:
            raise DemoFailed(f"rollback R-{rollback_id} ended {final}, not done")
        writes = [
            f"{w['verb']} {w['resource']}{'/' + w['subresource'] if w.get('subresource') else ''}"
            f" {w['namespace']}/{w['name']}"
            for w in self.stack.kube.audit[writes_before:]
        ]
        self.say.line("Kubernetes API writes made by the bot: " + ("; ".join(writes) or "none"))
        self.say.kubernetes(kube_lines(self.stack, self.apis))

    def after_rollback(self, request: dict[str, Any], alert: dict[str, Any]) -> None:
        self.say.step("What Slack shows afterwards")
        assert self.stack.services is not None
        # The bot paces its messages per channel, as Slack's rate limits ask; wait for them.
        self.stack.services.outbox.flush(timeout=STEP_TIMEOUT)
        thread = self.stack.slack.thread(CHANNEL, request["ts"])
        self.say.slack("the thread under the request:", [plain(m["text"]) for m in thread])
        updated = self.stack.slack.message(CHANNEL, request["ts"]) or request
        self.say.slack("the request message now reads:", message_lines(updated)[:1])
        card = _wait(
            lambda: (
                m
                if (m := self.stack.slack.message(CHANNEL, alert["ts"]))
                and "rolled back to revision" in json.dumps(m.get("blocks") or [])
                else None
            ),
            "the alert card to show the rollback",
        )
        self.say.slack("the alert card, edited in place, now reads:", message_lines(card))

    def trace_on_the_cluster(self) -> None:
        self.say.step("The trace on the cluster: change-cause and Events")
        self.say.line(f"kubectl -n {NAMESPACE} rollout history deploy/{SERVICE} shows:")
        rows = [f"{'REVISION':<9} CHANGE-CAUSE"] + [
            f"{rev.number:<9} {rev.annotations.get(CHANGE_CAUSE, '<none>')}"
            for rev in list_revisions(self.apis, NAMESPACE, SERVICE)
        ]
        self.say.block(rows)
        events = self.apis.core.list_namespaced_event(NAMESPACE).items
        self.say.line(f"kubectl -n {NAMESPACE} describe deploy/{SERVICE} lists the Events:")
        self.say.block(
            f"{e.type:<8} {e.reason:<16} {e.message}"
            for e in events
            if e.involved_object and e.involved_object.name == SERVICE
        )

    def second_roll_back(self, alert: dict[str, Any]) -> None:
        card = self.stack.slack.message(CHANNEL, alert["ts"]) or alert
        button = self._button(card, action_ids.ROLL_BACK)
        self.say.step(f'Alice clicks "{button["text"]["text"]}" on the card again')
        views_before = len(self.stack.slack.views)
        self._click(action_ids.ROLL_BACK, button, ALICE, card)
        view = _wait(
            lambda: next(
                (v["view"] for v in self.stack.slack.views[views_before:] if v["op"] == "update"),
                None,
            ),
            "the modal after the second Roll back",
        )
        self.say.slack("a modal opened for Alice:", view_lines(view))
        if BAD_IMAGE in json.dumps(view) and "known bad" not in json.dumps(view):
            raise DemoFailed("the second Roll back proposed the release it rolled back from")
        self.say.line("It proposes no bad release: v2 is remembered as rolled back from.")

    def alert_resolves(self, alert: dict[str, Any]) -> None:
        self.say.step("Alertmanager sends HighErrorRate resolved")
        response = self.stack.post_alert("alertmanager", alertmanager_payload(status="resolved"))
        self.say.line(f"POST {self.stack.url}/alerts/alertmanager -> HTTP {response.status_code}")
        self.say.line(
            "Mitigated means the harm stopped on evidence (the alerts resolved, the gate's "
            "alert checks clear) or by a person (/rollback mitigated INC-1); a healthy "
            "rollout alone is not."
        )
        card = _wait(
            lambda: (
                m
                if (m := self.stack.slack.message(CHANNEL, alert["ts"]))
                and "RESOLVED" in json.dumps(m.get("blocks") or [])
                else None
            ),
            "the alert card to show the alert resolved",
        )
        self.say.slack("the alert card now reads:", message_lines(card))

    def postmortem(self, incident_id: int) -> None:
        self.say.step(f"The postmortem of INC-{incident_id}, from the timeline")
        assert self.stack.services is not None
        queries = self.stack.services.queries
        name, markdown = queries.postmortem(incident_id, "md")
        metrics = json.loads(queries.postmortem(incident_id, "json")[1])["metrics"]
        path = self.workdir / name
        path.write_text(markdown, encoding="utf-8")
        page_name, page = queries.postmortem(incident_id, "html")
        (self.workdir / page_name).write_text(page, encoding="utf-8")
        self.say.line(
            f"time to acknowledge {_seconds(metrics['time_to_acknowledge_seconds'])}, "
            f"time to mitigate {_seconds(metrics['time_to_mitigate_seconds'])}; "
            f"written to {path} (and {page_name}, with the picture as SVG)"
        )
        self.say.block(markdown.rstrip().splitlines())

    # -- helpers ---------------------------------------------------------------------
    def _message_with(self, action_id: str, what: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for message in self.stack.slack.messages(CHANNEL):
                if any(b.get("action_id") == action_id for b in buttons(message)):
                    return message
            return None

        return _wait(find, what)

    @staticmethod
    def _button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
        found = next((b for b in buttons(message) if b.get("action_id") == action_id), None)
        if found is None:
            raise DemoFailed(f"the message has no {action_id} button")
        return found

    def _click(
        self, action_id: str, button: dict[str, Any], user: str, message: dict[str, Any]
    ) -> None:
        response = self.stack.driver.click(
            action_id=action_id,
            value=button["value"],
            user_id=user,
            channel_id=CHANNEL,
            message_ts=message["ts"],
        )
        _expect_ok(response, f"clicking {button['text']['text']!r}")

    def _new_ephemeral(self, user: str, seen: int) -> str:
        found = _wait(
            lambda: self.stack.slack.ephemerals(user)[seen:], f"the bot's answer to {user}"
        )
        return plain(found[0]["text"])

    def _final_state(self, rollback_id: int) -> str:
        assert self.stack.services is not None
        uow = self.stack.services.uow

        def finished() -> str | None:
            with uow(read_only=True) as u:
                row = u.rollbacks.get(id=rollback_id)
            return row.state if row and State(row.state).is_terminal else None

        return _wait(finished, f"rollback R-{rollback_id} to finish")

    def _state_path(self, rollback_id: int) -> list[str]:
        """The states the rollback went through, each with its time after the approval."""
        assert self.stack.services is not None
        with self.stack.services.uow(read_only=True) as u:
            events = u.timeline.list_for_rollback(rollback_id=rollback_id)
        moves = [
            (e.at, e.kind.removeprefix("rollback."))
            for e in events
            if e.kind.removeprefix("rollback.") in STATE_NAMES
        ]
        approved = next((at for at, state in moves if state == "approved"), moves[0][0])
        return [
            state if at <= approved else f"{state} (+{(at - approved).total_seconds():.2f} s)"
            for at, state in moves
        ]


STATE_NAMES = frozenset(s.value for s in State)


def kube_lines(stack: LoopbackStack, apis: KubeApis) -> list[str]:
    """The Deployment and its revisions, as `kubectl rollout history` would list them."""
    deployment = stack.deployment(NAMESPACE, SERVICE)
    meta, spec, status = deployment["metadata"], deployment["spec"], deployment.get("status", {})
    image = spec["template"]["spec"]["containers"][0]["image"]
    revision = meta.get("annotations", {}).get("deployment.kubernetes.io/revision", "?")
    lines = [
        f"deployment {NAMESPACE}/{SERVICE}: revision {revision}, image {image}, "
        f"{status.get('availableReplicas', 0)}/{spec['replicas']} available"
    ]
    for rev in list_revisions(apis, NAMESPACE, SERVICE):
        lines.append(
            f"  revision {rev.number}: {', '.join(rev.images)}, {rev.ready}/{rev.replicas} ready"
        )
    crashing = crashing_pods(stack)
    if crashing:
        lines.append(f"  {crashing} pod(s) in CrashLoopBackOff")
    return lines


def crashing_pods(stack: LoopbackStack) -> int:
    def crashing(pod: dict[str, Any]) -> bool:
        statuses = pod.get("status", {}).get("containerStatuses") or []
        return any(
            s.get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"
            for s in statuses
        )

    return sum(1 for pod in stack.kube.list("pods", NAMESPACE) if crashing(pod))


def alertmanager_payload(status: str = "firing") -> dict[str, Any]:
    """What Alertmanager's webhook (payload version 4) sends for the demo's alert."""
    labels = {"alertname": "HighErrorRate", "service": SERVICE, "severity": "critical"}
    annotations = {"summary": "5xx above 5%", "runbook_url": "https://runbooks.example/checkout"}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "rollback-bot",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": annotations["summary"]},
        "externalURL": "http://alertmanager.example",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "endsAt": "0001-01-01T00:00:00Z"
                if status == "firing"
                else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": "demo-checkout-5xx",
            }
        ],
    }


# -- plumbing -------------------------------------------------------------------------
def _wait(predicate: Callable[[], T | None], what: str) -> T:
    """Poll until ``predicate`` gives something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoFailed(f"gave up after {STEP_TIMEOUT:.0f} s waiting for {what}")
        time.sleep(0.05)


def _expect_ok(response: Any, doing: str) -> None:
    if response.status_code != 200:
        raise DemoFailed(f"the bot answered HTTP {response.status_code} to {doing}")


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"
