"""The bot's Slack identity: learnt once, kept through outages, retried at a bounded pace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt.context import BoltContext
from slack_sdk import WebClient

from rollback_bot.slack.identity import BotIdentity
from sandbox.slack import SlackStandIn


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as s:
        yield s


def _authorize(identity: BotIdentity) -> Any:
    return identity(context=BoltContext(), enterprise_id=None, team_id="T0TEAM", user_id="U0ALICE")


def test_an_outage_yields_the_token_alone_and_is_retried_only_after_the_pause(
    slack: SlackStandIn,
) -> None:
    now = [100.0]
    client = WebClient(token="xoxb-sandbox", base_url=slack.url)
    identity = BotIdentity(client, retry_after=30, monotonic=lambda: now[0])
    slack.inject("auth.test", error="service_unavailable", count=3)

    first = _authorize(identity)
    assert first.bot_token == "xoxb-sandbox" and first.bot_user_id is None
    calls = len(slack.calls_for("auth.test"))
    now[0] += 10
    _authorize(identity)
    assert len(slack.calls_for("auth.test")) == calls  # not one call per request
    slack.clear_faults()
    now[0] += 21
    learnt = _authorize(identity)
    assert learnt.bot_user_id and learnt.team_id
    assert identity.known is not None


def test_what_was_learnt_survives_a_later_outage(slack: SlackStandIn) -> None:
    client = WebClient(token="xoxb-sandbox", base_url=slack.url)
    identity = BotIdentity(client)
    assert identity.refresh()
    bot_user = _authorize(identity).bot_user_id
    slack.inject("auth.test", error="service_unavailable", count=100)
    assert _authorize(identity).bot_user_id == bot_user
