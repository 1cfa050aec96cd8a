"""A request nobody approves is closed when its approval window ends, by a timer."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from sandbox.stack import LoopbackStack
from tests.e2e.conftest import CATALOG, CHANNEL, FAST_SLACK, MakeStack, release
from tests.e2e.test_slack_commands import kinds, request_via_command, state_of, wait_state


@pytest.fixture
def stack(make_stack: MakeStack, migrated_url: str) -> Iterator[LoopbackStack]:
    catalog = copy.deepcopy(CATALOG)
    catalog["services"][0]["policy"]["approval_ttl_seconds"] = 1
    with make_stack(
        slack_channel_rate=FAST_SLACK, catalog=catalog, database_url=migrated_url, ready_delay=0.05
    ) as s:
        yield s


def test_an_unapproved_request_expires_on_its_own(stack: LoopbackStack) -> None:
    release(stack)
    request_via_command(stack, "checkout")
    wait_state(stack, 1, "requested", timeout=10)

    wait_state(stack, 1, "aborted", timeout=10)  # nobody clicked anything
    assert ("rollback.expired", "rollback-bot") in kinds(stack, 1)
    assert state_of(stack, 1) == "aborted"
    # Nothing was rolled back: the Deployment still runs the release that was there.
    deployment = stack.deployment("shop", "checkout")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v2")

    assert stack.services is not None
    stack.services.outbox.flush(timeout=10)
    message = next(m for m in stack.slack.messages(CHANNEL) if "R-1" in m["text"])
    assert "abort" in message["text"].lower() or "expired" in message["text"].lower()
