"""The bot's Web API client keeps its connection to Slack open, and survives Slack closing it.

Observed at the Slack stand-in: the calls it recorded and the TCP connections it accepted.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from urllib.error import URLError

import pytest
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError

from rollback_bot.app import slack_client
from rollback_bot.config import Settings
from sandbox.slack import SlackStandIn


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as s:
        yield s


def _settings(url: str) -> Settings:
    return Settings(
        slack_bot_token=SecretStr("xoxb-sandbox"),
        slack_signing_secret=SecretStr("secret"),
        slack_api_url=url,
        database_url="sqlite://",
    )


def test_calls_from_one_thread_share_one_connection(slack: SlackStandIn) -> None:
    client = slack_client(_settings(slack.url))
    before = slack.connections
    for n in range(10):
        client.chat_postEphemeral(channel="C0OPS", user="U0BOB", text=f"note {n}")
    assert [c["args"]["text"] for c in slack.calls_for("chat.postEphemeral")] == [
        f"note {n}" for n in range(10)
    ]
    assert slack.connections - before == 1


def test_threads_calling_at_once_reuse_the_pooled_connections(slack: SlackStandIn) -> None:
    client = slack_client(_settings(slack.url))
    before = slack.connections

    def post(n: int) -> None:
        for _ in range(3):
            client.chat_postEphemeral(channel="C0OPS", user="U0BOB", text=f"from {n}")

    threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(slack.calls_for("chat.postEphemeral")) == 12
    # at most one connection for each thread calling at the same time, none per call
    assert 1 <= slack.connections - before <= 4


def test_a_connection_slack_closed_is_replaced_and_the_call_sent_once(
    slack: SlackStandIn,
) -> None:
    client = slack_client(_settings(slack.url))
    client.chat_postEphemeral(channel="C0OPS", user="U0BOB", text="first")
    slack.drop_connections()
    client.chat_postEphemeral(channel="C0OPS", user="U0BOB", text="second")
    texts = [c["args"]["text"] for c in slack.calls_for("chat.postEphemeral")]
    assert texts == ["first", "second"]
    assert slack.connections == 2


def test_errors_and_rate_limits_read_as_before_on_a_kept_connection(slack: SlackStandIn) -> None:
    client = slack_client(_settings(slack.url))
    slack.inject("chat.postEphemeral", error="user_not_found")
    with pytest.raises(SlackApiError) as raised:
        client.chat_postEphemeral(channel="C0OPS", user="U0NOBODY", text="x")
    assert raised.value.response["error"] == "user_not_found"
    slack.inject("chat.postEphemeral", status=500)
    slack.inject("chat.postMessage", status=429, retry_after=0)
    client.chat_postEphemeral(channel="C0OPS", user="U0BOB", text="after a 500")
    client.chat_postMessage(channel="C0OPS", text="after a 429")
    statuses = [(c["method"], c["status"]) for c in slack.calls if c["method"].startswith("chat")]
    assert statuses == [
        ("chat.postEphemeral", 200),
        ("chat.postEphemeral", 500),
        ("chat.postEphemeral", 200),
        ("chat.postMessage", 429),
        ("chat.postMessage", 200),
    ]
    assert slack.connections == 1


def test_slack_unreachable_is_an_os_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    client = slack_client(_settings(f"http://127.0.0.1:{port}/api/"))
    with pytest.raises(URLError):
        client.chat_postMessage(channel="C0OPS", text="nobody hears this")


def test_the_clients_debug_records_are_logged_when_debug_is_on(
    slack: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    client = slack_client(_settings(slack.url))
    with caplog.at_level(logging.INFO, logger="slack_sdk"):
        client.chat_postEphemeral(channel="C0OPS", user="U0BOB", text="quiet")
    assert not [r for r in caplog.records if "Sending a request" in r.getMessage()]
    with caplog.at_level(logging.DEBUG, logger="slack_sdk"):
        client.chat_postEphemeral(channel="C0OPS", user="U0BOB", text="loud")
    sent = [r.getMessage() for r in caplog.records if "Sending a request" in r.getMessage()]
    assert len(sent) == 1 and "loud" in sent[0] and "xoxb-sandbox" not in sent[0]
