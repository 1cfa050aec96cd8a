"""Acknowledgements first: the work behind a button waits while other Slack requests are
being served, never for longer than its bound, and never when it opens a form.

The bot's web app is served a second time on the stack's services (its own bolt app and
work threads) so the test holds its count of Slack requests in flight, as an
acknowledgement being served would: the work's wait is observed (``waiting``), then what
the person is told is read from the Slack stand-in. Clicks are signed HTTP requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from rollback_bot.app import ServerThread
from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.values import button_value
from rollback_bot.web import acks_first
from rollback_bot.web.acks_first import EXTENSION, AcksInFlight
from rollback_bot.web.http import create_web_app
from rollback_bot.web.slack_app import create_bolt_app
from sandbox.slack import SlackDriver
from sandbox.stack import SIGNING_SECRET, LoopbackStack, wait_until
from tests.e2e.conftest import BOB, CATALOG, CHANNEL, MakeStack

pytestmark = pytest.mark.kube_free

NOT_THERE = "There is no rollback R-999999."


@contextmanager
def _serving(stack: LoopbackStack) -> Iterator[tuple[SlackDriver, AcksInFlight]]:
    """The bot's web app served again on the stack's services, and a driver that clicks it."""
    assert stack.services is not None
    web = create_web_app(stack.services, create_bolt_app(stack.services))
    server = ServerThread(web).start()
    try:
        driver = SlackDriver(
            events_url=f"{server.url}/slack/events",
            signing_secret=SIGNING_SECRET,
            standin=stack.slack,
        )
        yield driver, web.extensions[EXTENSION]
    finally:
        server.stop()


@pytest.fixture
def served(stack: LoopbackStack) -> Iterator[tuple[SlackDriver, AcksInFlight]]:
    with _serving(stack) as driver_and_acks:
        yield driver_and_acks


@pytest.fixture
def held(
    served: tuple[SlackDriver, AcksInFlight], monkeypatch: pytest.MonkeyPatch
) -> tuple[SlackDriver, AcksInFlight]:
    """Served, with a bound on the wait no test reaches: work waits for as long as another
    request is in flight."""
    monkeypatch.setattr(acks_first, "ACKS_FIRST_FOR", 60.0)
    return served


def _approve(driver: SlackDriver) -> int:
    return driver.click(
        action_id=action_ids.APPROVE,
        value=button_value(rollback_id=999_999),
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts="1.1",
    ).status_code


def _told(stack: LoopbackStack) -> list[str]:
    return [e.get("text", "") for e in stack.slack.ephemerals(BOB)]


def _deny(driver: SlackDriver) -> int:
    return driver.click(
        action_id=action_ids.DENY,
        value=button_value(rollback_id=1),
        user_id=BOB,
        channel_id=CHANNEL,
        message_ts="1.1",
    ).status_code


@contextmanager
def _another_request(acks: AcksInFlight) -> Iterator[None]:
    """Another Slack request being served for as long as the block runs."""
    other = acks.begin()
    try:
        yield
    finally:
        acks.end(other)


def test_a_lone_click_is_answered(
    stack: LoopbackStack, served: tuple[SlackDriver, AcksInFlight]
) -> None:
    driver, acks = served
    assert _approve(driver) == 200
    wait_until(lambda: _told(stack) == [NOT_THERE], timeout=10)
    assert acks.in_flight == 0


def test_a_click_s_work_waits_while_another_slack_request_is_served(
    stack: LoopbackStack, held: tuple[SlackDriver, AcksInFlight]
) -> None:
    driver, acks = held
    with _another_request(acks):  # another acknowledgement, still being served
        assert _approve(driver) == 200  # acknowledged at once
        wait_until(lambda: acks.waiting == 1, timeout=10)
        assert _told(stack) == []  # its work has not started
    wait_until(lambda: _told(stack) == [NOT_THERE], timeout=10)  # then it is done, once


def test_a_click_s_work_waits_no_longer_than_its_bound(
    stack: LoopbackStack,
    served: tuple[SlackDriver, AcksInFlight],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(acks_first, "ACKS_FIRST_FOR", 0.05)
    driver, acks = served
    with _another_request(acks):  # a request that does not end
        assert _approve(driver) == 200
        wait_until(lambda: _told(stack) == [NOT_THERE], timeout=10)
        assert acks.in_flight == 1


def test_a_button_that_opens_a_form_does_not_wait(
    stack: LoopbackStack, held: tuple[SlackDriver, AcksInFlight]
) -> None:
    """views.open takes the click's trigger_id only within 3 s of the click."""
    driver, acks = held
    with _another_request(acks):
        assert _deny(driver) == 200
        wait_until(lambda: stack.slack.count_calls("views.open") == 1, timeout=10)
        assert acks.waiting == 0


def test_a_form_to_open_is_not_held_up_behind_waiting_work(
    migrated_url: str, make_stack: MakeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One work thread, taken by an Approve click's waiting work: a Deny click after it
    still opens its form while the other request is in flight, and the Approve is
    answered first (the work threads take their work in turn)."""
    monkeypatch.setattr(acks_first, "ACKS_FIRST_FOR", 60.0)
    with (
        make_stack(catalog=CATALOG, database_url=migrated_url, slack_work_threads=1) as stack,
        _serving(stack) as (driver, acks),
        _another_request(acks),
    ):
        assert _approve(driver) == 200
        wait_until(lambda: acks.waiting == 1, timeout=10)
        assert _deny(driver) == 200
        wait_until(lambda: stack.slack.count_calls("views.open") == 1, timeout=10)
        assert _told(stack) == [NOT_THERE]
        assert acks.in_flight == 1
