"""``kill -9`` of a real ``rollback-bot serve`` in the middle of a gradual rollback.

The server runs as a subprocess against the in-process emulator and Slack
stand-in. It is killed twice: once while a gate waits between steps (the
pending step lives in APScheduler's job store, so the restarted bot carries
on from the recorded step) and once while a step's writes are in flight (the
restarted bot cannot know whether they landed, so it pauses and asks). In
both cases no step is written twice and no timeline event is lost.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy import column, select, table

from rollback_bot.slack.ui import action_ids
from rollback_bot.storage.engine import make_engine
from rollback_bot.storage.models import Rollback, TimelineEvent
from rollback_bot.storage.uow import UnitOfWorkFactory
from sandbox.slack import SlackDriver
from sandbox.stack import BOT_TOKEN, SIGNING_SECRET, LoopbackStack, wait_until
from tests.e2e.conftest import FAST_SLACK
from tests.e2e.execute_support import (
    ALICE,
    CHANNEL,
    WAIT,
    FakeAlertmanager,
    button,
    catalog,
    release_gradual,
    replicas,
    running_alertmanager,
    writes,
)

STEP_SECONDS = 2.0


@pytest.fixture
def alertmanager() -> Iterator[FakeAlertmanager]:
    yield from running_alertmanager()


@pytest.fixture
def cluster(migrated_url: str, alertmanager: FakeAlertmanager) -> Iterator[LoopbackStack]:
    """Emulator and Slack stand-in only: the bot is the subprocess."""
    cat = catalog(alertmanager.url, step_seconds=STEP_SECONDS)
    stack = LoopbackStack(
        slack_channel_rate=FAST_SLACK, catalog=cat, database_url=migrated_url, ready_delay=0.05
    )
    stack.start(bot=False)
    try:
        yield stack
    finally:
        stack.stop()


class Bot:
    """``rollback-bot serve`` as a process that can be killed and started again."""

    def __init__(self, cluster: LoopbackStack, tmp_path: Path, database_url: str) -> None:
        catalog_file = tmp_path / "catalog.yaml"
        catalog_file.write_text(yaml.safe_dump(cluster.catalog.model_dump(mode="json")))
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ROLLBACK_BOT_CATALOG": str(catalog_file),
            "SLACK_API_URL": cluster.slack.url,
            "SLACK_CHANNEL_RATE": str(FAST_SLACK),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "KUBECONFIG": cluster.kube.write_kubeconfig(tmp_path / "kubeconfig"),
        }
        self.cluster = cluster
        self.log = tmp_path / "bot.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rollback_bot.cli", "serve"],
                env={**self.env, "PORT": str(port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._healthy, timeout=WAIT, interval=0.1)

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the bot exited: {self.log.read_text()[-2000:]}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=WAIT)

    def stop(self) -> None:
        """At the end of the test: its database is thrown away, so no graceful stop is owed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)

    @property
    def driver(self) -> SlackDriver:
        return SlackDriver(
            events_url=f"{self.url}/slack/events",
            signing_secret=SIGNING_SECRET,
            standin=self.cluster.slack,
        )


@pytest.fixture
def bot(cluster: LoopbackStack, tmp_path: Path, migrated_url: str) -> Iterator[Bot]:
    process = Bot(cluster, tmp_path, migrated_url)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def uow(migrated_url: str) -> Iterator[UnitOfWorkFactory]:
    engine = make_engine(migrated_url)
    yield UnitOfWorkFactory(engine)
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _row(uow: UnitOfWorkFactory, rollback_id: int = 1) -> Rollback | None:
    with uow(read_only=True) as u:
        return u.rollbacks.get(id=rollback_id)


def _events(uow: UnitOfWorkFactory, rollback_id: int = 1) -> list[TimelineEvent]:
    with uow(read_only=True) as u:
        stmt = (
            select(TimelineEvent)
            .where(TimelineEvent.rollback_id == rollback_id)
            .order_by(TimelineEvent.id)
        )
        return list(u.session.scalars(stmt))


def _wait_row(uow: UnitOfWorkFactory, test: Any, what: str) -> Rollback:
    try:
        return wait_until(
            lambda: (row := _row(uow)) is not None and test(row) and row, timeout=WAIT
        )
    except TimeoutError:
        seen = "; ".join(e.summary for e in _events(uow))
        raise AssertionError(f"never {what}: {seen}") from None


def _request(bot: Bot, text: str) -> None:
    slack = bot.cluster.slack
    seen = len(slack.views)
    bot.driver.command(text, user_id=ALICE, channel_id=CHANNEL)
    update = wait_until(
        lambda: next((v for v in slack.views[seen:] if v["op"] == "update"), None), timeout=WAIT
    )
    view = update["view"]
    assert view["callback_id"] == action_ids.REQUEST_MODAL, json.dumps(view)[:300]
    bot.driver.submit_view(
        callback_id=action_ids.REQUEST_MODAL,
        user_id=ALICE,
        private_metadata=view["private_metadata"],
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "restart test"}},
    )


def _click(bot: Bot, action_id: str) -> None:
    def find() -> tuple[dict[str, Any], dict[str, Any]] | None:
        for message in reversed(bot.cluster.slack.messages(CHANNEL)):
            found = button(message, action_id)
            if found:
                return message, found
        return None

    message, found = wait_until(find, timeout=WAIT)
    bot.driver.click(
        action_id=action_id,
        value=found["value"],
        user_id=ALICE,
        channel_id=CHANNEL,
        message_ts=message["ts"],
    )


def _threads(cluster: LoopbackStack) -> str:
    lines = []
    for message in cluster.slack.messages(CHANNEL):
        lines += [r.get("text", "") for r in cluster.slack.thread(CHANNEL, message["ts"])]
    return "\n".join(lines)


def test_kill_9_mid_rollback_never_repeats_a_step_nor_loses_an_event(
    cluster: LoopbackStack, bot: Bot, uow: UnitOfWorkFactory
) -> None:
    release_gradual(cluster, "shopfront")
    bot.start()
    _request(bot, "shopfront")

    # 1. Killed while the gate before step 3 waits: the step is a stored job.
    _wait_row(uow, lambda r: r.state == "executing" and r.step == 2, "reached step 2")
    wait_until(lambda: _jobs(uow) == ["rb1-gate"], timeout=WAIT)
    bot.kill()
    assert _jobs(uow) == ["rb1-gate"]
    bot.start()
    _wait_row(uow, lambda r: r.step == 3, "continued to step 3")

    # 2. Killed while step 4's writes are in flight (every API call now takes 3 s).
    cluster.kube.set_latency(3)
    wait_until(
        lambda: any(
            e.kind == "rollback.applying" and e.data.get("step") == 3 for e in _events(uow)
        ),
        timeout=WAIT,
    )
    bot.kill()
    cluster.kube.set_latency(0)
    bot.start()
    row = _wait_row(uow, lambda r: r.state == "paused", "paused after the restart")
    assert row.step == 3
    wait_until(lambda: "paused so nothing repeats blindly" in _threads(cluster), timeout=WAIT)

    _click(bot, action_ids.RESUME)
    _wait_row(uow, lambda r: r.state == "done", "finished")

    assert replicas(cluster, "shopfront-canary") == 0
    assert replicas(cluster, "shopfront") == 10
    # 5 -> 2 -> 1 -> 0 on the canary and 5 -> 8 -> 9 -> 10 on stable: each written once.
    assert len(writes(cluster, "shopfront-canary", dry_run=False)) == 3
    assert len(writes(cluster, "shopfront", dry_run=False)) == 3
    kinds = [e.kind for e in _events(uow)]
    assert kinds.count("rollback.step") == 3
    assert kinds.count("health.passed") == 3
    assert kinds.count("rollback.paused") == 1
    assert kinds[-1] == "rollback.done"
    changed = [e for e in _events(uow) if e.kind == "kube.changed"]
    assert {(e.data["name"], e.data["step"]) for e in changed} >= {
        ("shopfront-canary", 1),
        ("shopfront-canary", 2),
    }


def _jobs(uow: UnitOfWorkFactory) -> list[str]:
    """Ids in APScheduler's job store: what a restarted bot will find."""
    with uow(read_only=True) as u:
        query: Any = select(column("id")).select_from(table("apscheduler_jobs"))
        return [str(job_id) for job_id in u.session.scalars(query)]


def test_a_write_that_landed_just_before_kill_9_is_on_the_timeline(
    cluster: LoopbackStack, bot: Bot, uow: UnitOfWorkFactory
) -> None:
    """The cluster stored the PATCH, the bot died before it heard so: still recorded once."""
    release_gradual(cluster, "shopfront")
    bot.start()
    _request(bot, "shopfront")
    _wait_row(uow, lambda r: r.state == "executing" and r.step == 1, "reached step 1")

    # From now on every write is stored at once and answered 3 s later.
    before = len(writes(cluster, "shopfront", dry_run=False))
    cluster.kube.set_latency(3, before_reply=True)
    wait_until(lambda: len(writes(cluster, "shopfront", dry_run=False)) > before, timeout=WAIT)
    bot.kill()  # step 2's scale-up of stable landed; its answer never arrived
    cluster.kube.set_latency(0, before_reply=True)
    bot.start()
    _wait_row(uow, lambda r: r.state == "paused", "paused after the restart")
    _click(bot, action_ids.RESUME)
    _wait_row(uow, lambda r: r.state == "done", "finished")

    changed = [e for e in _events(uow) if e.kind == "kube.changed" and not e.data["dry_run"]]
    for name in ("shopfront", "shopfront-canary"):
        landed = writes(cluster, name, dry_run=False)
        recorded = [e for e in changed if e.data["name"] == name]
        assert len(recorded) == len(landed), (name, [e.summary for e in recorded])
    (recovered,) = [e for e in changed if e.data.get("recovered")]
    assert recovered.data["name"] == "shopfront" and recovered.data["step"] == 1
    assert recovered.summary.startswith("recovered (written before the bot restarted): ")
