"""On PostgreSQL without leader election, a second ``serve`` refuses to start (advisory lock);
with LEADER_ELECTION=true both run and exactly one leads (the Lease on the emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox.stack import LoopbackStack, wait_until
from tests.e2e.conftest import CATALOG, FAST_SLACK
from tests.e2e.test_serve import Serve, _env


@pytest.fixture
def pg_stack(migrated_url: str) -> Iterator[LoopbackStack]:
    if migrated_url.startswith("sqlite"):
        pytest.skip("PostgreSQL only (ROLLBACK_BOT_TEST_DATABASE_URL); SQLite has its own lock")
    stack = LoopbackStack(
        slack_channel_rate=FAST_SLACK, catalog=CATALOG, database_url=migrated_url, ready_delay=0.05
    )
    stack.start(bot=False)
    try:
        yield stack
    finally:
        stack.stop()


def _leading(url: str) -> bool:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return "rollback_bot_leader 1.0" in text.splitlines()


def test_a_second_serve_without_leader_election_is_refused(
    pg_stack: LoopbackStack, tmp_path: Path
) -> None:
    first = Serve(_env(pg_stack, tmp_path), tmp_path, "first")
    try:
        assert _leading(first.url())
        second = Serve(_env(pg_stack, tmp_path), tmp_path, "second")
        assert second.wait() == 2
        refusal = second.stderr.read_text()
        assert "another rollback-bot serve already runs on this PostgreSQL database" in refusal
        assert "LEADER_ELECTION=true" in refusal
        assert "Traceback" not in second.output()
        assert first.process.poll() is None
    finally:
        assert first.terminate() == 0, first.output()
    # The lock went with the first process's session.
    third = Serve(_env(pg_stack, tmp_path), tmp_path, "third")
    try:
        third.url()
    finally:
        assert third.terminate() == 0, third.output()


def test_with_leader_election_two_serve_run_and_one_leads(
    pg_stack: LoopbackStack, tmp_path: Path
) -> None:
    lease = {
        "LEADER_ELECTION": "true",
        "LEADER_ELECTION_LEASE_DURATION": "3",
        "LEADER_ELECTION_RENEW_DEADLINE": "2",
        "LEADER_ELECTION_RETRY_PERIOD": "0.5",
    }
    a = Serve(_env(pg_stack, tmp_path, POD_NAME="a", **lease), tmp_path, "a")
    b = Serve(_env(pg_stack, tmp_path, POD_NAME="b", **lease), tmp_path, "b")
    try:
        urls = {"a": a.url(), "b": b.url()}
        leader = wait_until(
            lambda: [n for n, u in urls.items() if _leading(u)] or None, timeout=30, interval=0.1
        )
        assert len(leader) == 1, leader
        lease_obj = pg_stack.kube.get("leases", "default", "rollback-bot") or {}
        assert lease_obj["spec"]["holderIdentity"] == leader[0]
        # A graceful stop gives the lease up: the other leads without waiting it out.
        (a if leader == ["a"] else b).terminate()
        other = "b" if leader == ["a"] else "a"
        wait_until(lambda: _leading(urls[other]), timeout=30, interval=0.1)
        released = pg_stack.kube.get("leases", "default", "rollback-bot") or {}
        assert released["spec"]["holderIdentity"] == other
        assert released["spec"]["leaseTransitions"] == 1
    finally:
        assert a.terminate() == 0, a.output()
        assert b.terminate() == 0, b.output()
