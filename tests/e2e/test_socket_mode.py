"""Socket Mode runs the same listeners as HTTP mode.

Slack pushes the payloads over a websocket instead of posting them, and the
acknowledgement travels back on the same socket. These tests send the very
payloads the HTTP tests sign, once to a bolt ``SocketModeHandler`` in this
process and once to ``rollback-bot serve --socket-mode`` as a real process
configured only through its environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_bolt.adapter.socket_mode import SocketModeHandler

from rollback_bot.slack.ui import action_ids
from rollback_bot.web.slack_app import create_bolt_app
from sandbox.slack import SlackDriver, SlackStandIn
from sandbox.stack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, LoopbackStack, wait_until
from tests.e2e.conftest import ALICE, BOB, CATALOG, CHANNEL, FAST_SLACK, release

SOCKET_TIMEOUT = 15.0
GOOD_IMAGE = "registry.local/checkout:v1"


# -- the conversation, over the socket ------------------------------------------------------


def _help_ack(slack: SlackStandIn, driver: SlackDriver) -> dict[str, Any]:
    payload = driver.command_payload("help", user_id=ALICE, channel_id=CHANNEL)
    return slack.socket_send("slash_commands", payload, timeout=SOCKET_TIMEOUT)


def _assert_help(ack: dict[str, Any]) -> None:
    body = ack.get("payload") or {}
    assert body.get("response_type") == "ephemeral"
    text = body.get("text", "") + json.dumps(body.get("blocks", []))
    for verb in ("status", "history", "approve", "deny", "pause", "resume", "abort", "export"):
        assert verb in text, f"help does not mention {verb!r}"


def _request_modal(slack: SlackStandIn) -> dict[str, Any] | None:
    for view in slack.views:
        if view["op"] == "update" and view["view"].get("callback_id") == action_ids.REQUEST_MODAL:
            return view["view"]
    return None


def _approve_button(slack: SlackStandIn) -> tuple[dict[str, Any], dict[str, Any]] | None:
    for message in slack.messages(CHANNEL):
        for button in slack.buttons(CHANNEL, message["ts"]):
            if button.get("action_id") == action_ids.APPROVE:
                return message, button
    return None


def _roll_back_over_socket(slack: SlackStandIn, driver: SlackDriver) -> None:
    """Alice asks with ``/rollback checkout``, confirms the modal; Bob clicks Approve."""
    command = driver.command_payload("checkout", user_id=ALICE, channel_id=CHANNEL)
    ack = slack.socket_send("slash_commands", command, timeout=SOCKET_TIMEOUT)
    assert ack["envelope_id"]

    view = wait_until(lambda: _request_modal(slack), timeout=SOCKET_TIMEOUT)
    assert GOOD_IMAGE in json.dumps(view["blocks"])
    submission = driver.view_submission_payload(
        callback_id=action_ids.REQUEST_MODAL,
        user_id=ALICE,
        private_metadata=view["private_metadata"],
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "5xx after v2"}},
    )
    slack.socket_send("interactive", submission, timeout=SOCKET_TIMEOUT)

    message, approve = wait_until(lambda: _approve_button(slack), timeout=SOCKET_TIMEOUT)
    click = driver.click_payload(
        action_id=action_ids.APPROVE,
        value=approve["value"],
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts=message["ts"],
    )
    ack = slack.socket_send("interactive", click, timeout=SOCKET_TIMEOUT)
    # A click is acknowledged empty; Bob hears the outcome ephemerally afterwards.
    assert not ack.get("payload")


def _image(stack: LoopbackStack) -> str:
    containers = stack.deployment("shop", "checkout")["spec"]["template"]["spec"]["containers"]
    return str(containers[0]["image"])


# -- in process -----------------------------------------------------------------------------


@pytest.fixture
def socket_handler(stack: LoopbackStack) -> Iterator[SocketModeHandler]:
    assert stack.services is not None
    handler = SocketModeHandler(create_bolt_app(stack.services), app_token=APP_TOKEN)
    handler.connect()
    try:
        assert stack.slack.socket_connected(timeout=SOCKET_TIMEOUT)
        yield handler
    finally:
        handler.close()


def test_in_process_help_and_approve_click(
    stack: LoopbackStack, socket_handler: SocketModeHandler
) -> None:
    release(stack)
    driver = stack.driver

    _assert_help(_help_ack(stack.slack, driver))
    _roll_back_over_socket(stack.slack, driver)

    def state() -> str | None:
        assert stack.services is not None
        with stack.services.uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=1)
            return row.state if row is not None else None

    wait_until(lambda: state() == "done", timeout=30)
    assert _image(stack) == GOOD_IMAGE
    assert stack.slack.calls_for("views.open"), "the modal opened through the Web API"


def test_forged_http_request_is_still_refused_while_socket_mode_runs(
    stack: LoopbackStack, socket_handler: SocketModeHandler
) -> None:
    # Socket Mode trusts the websocket, not signatures: the HTTP endpoint must keep checking them.
    body = b"command=%2Frollback&text=help"
    response = stack.driver.raw(
        body,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": "1",
            "X-Slack-Signature": "v0=forged",
        },
    )
    assert response.status_code == 401
    _assert_help(_help_ack(stack.slack, stack.driver))


# -- as a process ---------------------------------------------------------------------------


class _Serve:
    """``rollback-bot serve --socket-mode`` with its output kept in files (pipes can fill)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.stdout = logs / "serve.out"
        self.stderr = logs / "serve.err"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "rollback_bot.cli",
                    "serve",
                    "--socket-mode",
                    "--host",
                    "127.0.0.1",
                ],
                env=env,
                stdout=out,
                stderr=err,
            )

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def wait_for_output(self, text: str, timeout: float) -> None:
        def seen() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode}:\n{self.output()}")
            return text in self.stdout.read_text()

        wait_until(seen, timeout=timeout, interval=0.05)

    def terminate(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def _serve_env(stack: LoopbackStack, tmp_path: Path) -> dict[str, str]:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(CATALOG, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ROLLBACK_BOT_"))}
    env.update(
        SLACK_API_URL=stack.slack.url,
        SLACK_CHANNEL_RATE=str(FAST_SLACK),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        DATABASE_URL=stack.database_url,
        ROLLBACK_BOT_CATALOG=str(catalog),
        KUBECONFIG=stack.kube.write_kubeconfig(tmp_path / "kubeconfig"),
        PORT="0",  # the process binds a free port and prints it
        PYTHONUNBUFFERED="1",
    )
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return env


@pytest.fixture
def bare_stack(migrated_url: str) -> Iterator[LoopbackStack]:
    """Emulator and stand-in only: the bot under test is the separate process."""
    stack = LoopbackStack(
        slack_channel_rate=FAST_SLACK, catalog=CATALOG, database_url=migrated_url, ready_delay=0.05
    )
    stack.start(bot=False)
    try:
        yield stack
    finally:
        stack.stop()


def test_serve_socket_mode_process(bare_stack: LoopbackStack, tmp_path: Path) -> None:
    release(bare_stack)
    serve = _Serve(_serve_env(bare_stack, tmp_path), tmp_path)
    try:
        serve.wait_for_output("connected in Socket Mode", timeout=60)
        assert bare_stack.slack.socket_connected(timeout=SOCKET_TIMEOUT)
        driver = SlackDriver(
            events_url="http://127.0.0.1:9/unused",
            signing_secret=SIGNING_SECRET,
            standin=bare_stack.slack,
        )

        _assert_help(_help_ack(bare_stack.slack, driver))
        _roll_back_over_socket(bare_stack.slack, driver)
        wait_until(lambda: _image(bare_stack) == GOOD_IMAGE, timeout=30)
        bare_stack.wait_available("shop", "checkout", timeout=30)
        wait_until(lambda: _rollback_state(bare_stack.database_url) == "done", timeout=30)
    finally:
        code = serve.terminate()
    assert code == 0, serve.output()
    assert "listening on http://127.0.0.1:" in serve.stdout.read_text()
    assert BOT_TOKEN not in serve.output() and APP_TOKEN not in serve.output()
    wait_until(lambda: bare_stack.slack.socket_connection_count == 0, timeout=10)


def _rollback_state(database_url: str) -> str | None:
    from rollback_bot.storage.engine import make_engine
    from rollback_bot.storage.uow import UnitOfWorkFactory

    engine = make_engine(database_url)
    try:
        with UnitOfWorkFactory(engine)(read_only=True) as uow:
            row = uow.rollbacks.get(id=1)
            return row.state if row is not None else None
    finally:
        engine.dispose()
