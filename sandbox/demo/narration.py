"""What the terminal shows: a numbered step, then what Slack and Kubernetes showed.

Short, plain lines to stdout; a failure goes to stderr with the step it happened in and
where the bot's own log is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from sandbox.demo.scenario import ALICE, BOB, CHANNEL, NAMESPACE, SERVICE

if TYPE_CHECKING:
    from sandbox.stack import LoopbackStack


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

    def keep(self, stack: LoopbackStack, workdir: Path, state: Path) -> None:
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
        self._print(f"Be someone in Slack (signed requests to the bot; state in {state}):")
        for command in [
            f"python -m sandbox.slack send --user {BOB} '/rollback status'",
            f"python -m sandbox.slack send --user {ALICE} '/rollback history {SERVICE}'",
            f"python -m sandbox.slack send --user {ALICE} '/rollback drill {SERVICE}'",
            f"python -m sandbox.slack click R-2 approve --user {BOB}",
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
