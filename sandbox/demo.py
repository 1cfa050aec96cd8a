"""``rollback-bot demo``: the whole loop on loopback stand-ins, told step by step.

Before anyone creates a Slack app or points the bot at a cluster they should be able
to see what it does. The demo starts the Kubernetes API emulator, the Slack stand-in
and the bot on 127.0.0.1 (``sandbox.stack.LoopbackStack``: the same composition root,
bolt app, waitress server, signed requests and official Kubernetes client as
``rollback-bot serve``), plays one incident through them (a good release, a crashing
one, an alert, a request, a refused self-approval, an approval, the rollback, the
postmortem) and narrates what Slack showed and what changed in Kubernetes.

The bot's own log goes to a file in the demo directory, so the terminal shows the
story and not the plumbing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import yaml

from rollback_bot.catalog import Catalog, parse_catalog
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.revisions import list_revisions
from rollback_bot.rollbacks.lifecycle import State
from rollback_bot.slack.ui import action_ids

if TYPE_CHECKING:
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

T = TypeVar("T")


class DemoFailed(Exception):
    """A step did not turn out as the product promises; the message says which."""


def sample_catalog() -> Catalog:
    """The catalog shipped in the package, validated like any other."""
    text = resources.files("rollback_bot").joinpath(SAMPLE_CATALOG).read_text(encoding="utf-8")
    return parse_catalog(yaml.safe_load(text))


def run_demo(
    *,
    keep: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    directory: Path | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run the narrated demo; 0 on success, 1 on failure, 130 when interrupted.

    The story goes to ``out`` (stdout), a failure to ``err`` (stderr). ``keep`` leaves
    everything running until ``stop`` is set (by default: until Ctrl-C or SIGTERM).
    """
    # Taken now: while the demo runs, sys.stderr points at bot.log.
    narrator = Narrator(out or _terminal(), err or sys.stderr)
    try:
        workdir = directory or Path(tempfile.mkdtemp(prefix="rollback-bot-demo-"))
        workdir.mkdir(parents=True, exist_ok=True)
        log = workdir / "bot.log"
        log.touch()
        # A directory used before holds the last run's incident, whose alert would be
        # taken as already known: every run starts from an empty database.
        (workdir / "demo.db").unlink(missing_ok=True)
    except OSError as exc:
        narrator.fail(f"cannot use {directory or 'a temporary directory'}: {exc}")
        return 1
    _bypass_proxies()
    narrator.intro(workdir)
    with _log_to(log):
        return _play(narrator, workdir, keep=keep, stop=stop)


def _play(narrator: Narrator, workdir: Path, *, keep: bool, stop: threading.Event | None) -> int:
    # Imported only now: the migration tooling logs as it loads, and that belongs in
    # bot.log, not in the story.
    from sandbox.stack import LoopbackStack

    started = time.monotonic()
    stack: LoopbackStack | None = None
    try:
        stack = LoopbackStack(
            catalog=sample_catalog(),
            database_url=f"sqlite:///{workdir / 'demo.db'}",
            ready_delay=READY_DELAY,
        )
        Demo(stack, narrator, workdir).play()
        narrator.finish(time.monotonic() - started)
        if not keep:
            narrator.not_kept(workdir)
            return 0
        narrator.keep(stack, workdir)
        _wait_for_stop(stop)
        narrator.stopping()
        return 0
    except KeyboardInterrupt:
        narrator.fail("interrupted")
        return 130
    except Exception as exc:
        narrator.fail(_describe(exc))
        return 1
    finally:
        if stack is not None:
            _quietly(stack.stop)


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
        self.after_rollback(request)
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

    def after_rollback(self, request: dict[str, Any]) -> None:
        self.say.step("What Slack shows afterwards")
        assert self.stack.services is not None
        # The bot paces its messages per channel, as Slack's rate limits ask; wait for them.
        self.stack.services.outbox.flush(timeout=STEP_TIMEOUT)
        thread = self.stack.slack.thread(CHANNEL, request["ts"])
        self.say.slack("the thread under the request:", [plain(m["text"]) for m in thread])
        updated = self.stack.slack.message(CHANNEL, request["ts"]) or request
        self.say.slack("the request message now reads:", message_lines(updated)[:1])

    def postmortem(self, incident_id: int) -> None:
        self.say.step(f"The postmortem of INC-{incident_id}, from the timeline")
        assert self.stack.services is not None
        queries = self.stack.services.queries
        name, markdown = queries.postmortem(incident_id, "md")
        metrics = json.loads(queries.postmortem(incident_id, "json")[1])["metrics"]
        path = self.workdir / name
        path.write_text(markdown, encoding="utf-8")
        self.say.line(
            f"time to acknowledge {_seconds(metrics['time_to_acknowledge_seconds'])}, "
            f"time to mitigate {_seconds(metrics['time_to_mitigate_seconds'])}; "
            f"written to {path}"
        )
        self.say.block(markdown.rstrip().splitlines())

    # -- helpers ---------------------------------------------------------------------
    def _message_with(self, action_id: str, what: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for message in self.stack.slack.messages(CHANNEL):
                if any(b.get("action_id") == action_id for b in _buttons(message)):
                    return message
            return None

        return _wait(find, what)

    @staticmethod
    def _button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
        found = next((b for b in _buttons(message) if b.get("action_id") == action_id), None)
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


# -- what the terminal shows --------------------------------------------------------------
class Narrator:
    """Short, plain lines: a numbered step, then what Slack and Kubernetes show."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self.log: Path | None = None
        self._step = 0
        self.current = "starting"

    def _print(self, text: str = "") -> None:
        self._out.write(text + "\n")
        self._out.flush()

    def intro(self, workdir: Path) -> None:
        self.log = workdir / "bot.log"
        self._print("rollback-bot demo: one incident, start to finish, on 127.0.0.1 only")
        self._print(f"demo directory: {workdir} (database, kubeconfig, bot.log, postmortem)")

    def step(self, title: str) -> None:
        self._step += 1
        self.current = f"[{self._step}] {title}"
        self._print()
        self._print(self.current)

    def line(self, text: str) -> None:
        self._print(f"    {text}")

    def block(self, lines: Iterable[str]) -> None:
        for text in lines:
            self._print(f"      | {text}".rstrip())

    def slack(self, where: str, lines: Iterable[str]) -> None:
        self.line(f"Slack, {where}")
        self.block(lines)

    def kubernetes(self, lines: Iterable[str]) -> None:
        self.line("Kubernetes:")
        self.block(lines)

    def finish(self, seconds: float) -> None:
        self._print()
        self._print(f"Done in {seconds:.1f} s: alert, request, approval, rollback, postmortem.")

    def not_kept(self, workdir: Path) -> None:
        self._print("Everything has stopped. The database stays; ask it, for instance:")
        self._print(f"    DATABASE_URL=sqlite:///{workdir / 'demo.db'} rollback-bot incidents")
        self._print("Run `rollback-bot demo --keep` to keep the stack up and poke at it, e.g.")
        self._print(
            f"    kubectl --kubeconfig {workdir / 'kubeconfig'} -n {NAMESPACE} "
            f"rollout history deploy/{SERVICE}"
        )

    def keep(self, stack: LoopbackStack, workdir: Path) -> None:
        kubeconfig = workdir / "kubeconfig"
        alert = json.dumps(
            {"service": SERVICE, "name": "HighLatency", "severity": "warning", "status": "firing"}
        )
        self._print()
        self._print("Still running. Poke at it:")
        for label, text in [
            ("bot", f"{stack.url}  (/alerts/<source>, /slack/events, /healthz, /metrics)"),
            ("Slack stand-in", f"{stack.slack.url}"),
            ("kubeconfig", f"{kubeconfig}"),
        ]:
            self.line(f"{label:<15} {text}")
        self._print()
        for command in [
            f"kubectl --kubeconfig {kubeconfig} -n {NAMESPACE} rollout history deploy/{SERVICE}",
            f"kubectl --kubeconfig {kubeconfig} -n {NAMESPACE} get deploy,rs,pods",
            f"curl -s -X POST {stack.url}/alerts/generic -H 'Content-Type: application/json'"
            f" -H 'Authorization: Bearer {stack.alert_token}' -d '{alert}'",
            f"curl -s '{stack.slack.root_url}_sandbox/messages?channel={CHANNEL}'",
            f"DATABASE_URL=sqlite:///{workdir / 'demo.db'} rollback-bot incidents",
        ]:
            self.line(f"$ {command}")
        self._print()
        self._print("Press Ctrl-C to stop.")

    def stopping(self) -> None:
        self._print("Stopping.")

    def fail(self, why: str) -> None:
        self._print()
        self._err.write(f"rollback-bot demo: FAILED at {self.current}: {why}\n")
        if self.log is not None:
            self._err.write(f"the bot's log: {self.log}\n")
        self._err.flush()


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


def message_lines(message: dict[str, Any]) -> list[str]:
    """A Slack message as a reader sees it: its blocks, or its text when it has none."""
    blocks = message.get("blocks") or []
    return blocks_lines(blocks) if blocks else [plain(message.get("text", ""))]


def view_lines(view: dict[str, Any]) -> list[str]:
    title = view.get("title", {}).get("text", "")
    buttons = [view[k]["text"] for k in ("submit", "close") if view.get(k)]
    return [f"== {title} ==", *blocks_lines(view.get("blocks", [])), _buttons_line(buttons)]


def blocks_lines(blocks: Iterable[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind in ("header", "section") and block.get("text"):
            lines += plain(block["text"]["text"]).splitlines()
        if kind == "section":
            lines += [_field(f["text"]) for f in block.get("fields", [])]
        elif kind == "context":
            lines.append(" · ".join(plain(e.get("text", "")) for e in block.get("elements", [])))
        elif kind == "actions":
            lines.append(_buttons_line(b["text"]["text"] for b in _buttons({"blocks": [block]})))
        elif kind == "input":
            lines.append(f"{block.get('label', {}).get('text', '')}: [ ______ ]")
        elif kind == "divider":
            lines.append("---")
    return lines


_LINK = re.compile(r"<([^<>|]+)\|([^<>]+)>")
_MENTION = re.compile(r"<[@#](\w+)>")
_SUBTEAM = re.compile(r"<!subteam\^(\w+)>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


def plain(mrkdwn: str) -> str:
    """Slack mrkdwn as plain terminal text: links and dates show their fallback text."""
    text = _LINK.sub(r"\2", mrkdwn)
    text = _MENTION.sub(r"@\1", text)
    text = _SUBTEAM.sub(r"@\1", text)
    return _BOLD.sub(r"\1", text)


def _field(mrkdwn: str) -> str:
    label, _, value = plain(mrkdwn).partition("\n")
    return f"{label}: {value}" if value else label


def _buttons_line(texts: Iterable[str]) -> str:
    return " ".join(f"[{t}]" for t in texts)


def _buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        element
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("type") == "button"
    ]


def alertmanager_payload() -> dict[str, Any]:
    """What Alertmanager's webhook (payload version 4) sends for the demo's alert."""
    labels = {"alertname": "HighErrorRate", "service": SERVICE, "severity": "critical"}
    annotations = {"summary": "5xx above 5%", "runbook_url": "https://runbooks.example/checkout"}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "rollback-bot",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": annotations["summary"]},
        "externalURL": "http://alertmanager.example",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "endsAt": "0001-01-01T00:00:00Z",
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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DemoFailed):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _terminal() -> TextIO:
    # Slack texts carry emoji; a terminal or pipe that cannot show them gets "?" instead
    # of a crash in the middle of the story.
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    return sys.stdout


def _bypass_proxies() -> None:
    """Loopback traffic must not go to an HTTP proxy configured for the outside world."""
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(name, "").split(",") if h]
        missing = [h for h in ("127.0.0.1", "localhost") if h not in hosts]
        if missing:
            os.environ[name] = ",".join(hosts + missing)


@contextlib.contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """Send log records and stray stderr output to ``path`` while the demo runs.

    Stderr too: the loopback servers report dropped client connections there, which
    is plumbing, not part of the story.
    """
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    with path.open("a", encoding="utf-8", errors="replace") as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.handlers = [handler]
        root.setLevel(logging.INFO)
        try:
            with contextlib.redirect_stderr(stream):
                yield
        finally:
            root.handlers = saved_handlers
            root.setLevel(saved_level)


def _wait_for_stop(stop: threading.Event | None) -> None:
    """Block until ``stop`` is set, or, without one, until Ctrl-C or SIGTERM."""
    if stop is not None:
        stop.wait()
        return
    interrupted = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = [signal.signal(sig, lambda *_: interrupted.set()) for sig in signals]
    try:
        # Short waits so that the handlers get to run on the main thread.
        while not interrupted.wait(0.2):
            pass
    finally:
        for sig, handler in zip(signals, previous, strict=True):
            signal.signal(sig, handler)


def _quietly(action: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        action()
