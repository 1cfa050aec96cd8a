"""The short-lived caches: user-group members and revisions, read again after their TTL."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from rollback_bot.clock import FakeClock
from rollback_bot.rollbacks.policies import MembershipUnavailable
from rollback_bot.slack.directory import GroupDirectory


class CountingSlack:
    """Answers usergroups.users.list from a table and counts the calls."""

    def __init__(self, groups: dict[str, list[str]]) -> None:
        self.groups = groups
        self.calls: list[str] = []

    def usergroups_users_list(self, *, usergroup: str) -> dict[str, Any]:
        self.calls.append(usergroup)
        if usergroup not in self.groups:
            response = SlackResponse(
                client=None,
                http_verb="POST",
                api_url="usergroups.users.list",
                req_args={},
                data={"ok": False, "error": "no_such_subteam"},
                headers={},
                status_code=200,
            )
            raise SlackApiError("no_such_subteam", response)
        return {"ok": True, "users": self.groups[usergroup]}


def test_members_are_remembered_for_the_ttl_then_asked_again() -> None:
    slack = CountingSlack({"S0SRE": ["U0BOB"]})
    clock = FakeClock()
    directory = GroupDirectory(slack, clock, ttl_seconds=60)  # type: ignore[arg-type]

    assert directory.members("S0SRE") == {"U0BOB"}
    slack.groups["S0SRE"] = ["U0BOB", "U0CAROL"]
    clock.advance(59)
    assert directory.members("S0SRE") == {"U0BOB"}
    assert slack.calls == ["S0SRE"]

    clock.advance(1)
    assert directory.members("S0SRE") == {"U0BOB", "U0CAROL"}
    assert slack.calls == ["S0SRE", "S0SRE"]


def test_an_unreadable_group_grants_nothing_says_so_and_is_not_remembered() -> None:
    slack = CountingSlack({"S0SRE": ["U0BOB"]})
    directory = GroupDirectory(slack, FakeClock())  # type: ignore[arg-type]

    with pytest.raises(SlackApiError):
        directory.members("S0GONE")
    with pytest.raises(MembershipUnavailable) as refused:
        directory.groups_of("U0BOB", ["S0SRE", "S0GONE"])
    assert refused.value.known == {"S0SRE"}
    assert set(refused.value.failed) == {"S0GONE"}
    # A failure is not cached: the next question asks Slack again.
    slack.groups["S0GONE"] = ["U0BOB"]
    assert directory.groups_of("U0BOB", ["S0SRE", "S0GONE"]) == {"S0SRE", "S0GONE"}


def test_revisions_are_read_once_per_ttl_and_forget_drops_them(monkeypatch: Any) -> None:
    from rollback_bot.catalog import parse_catalog
    from rollback_bot.slack import presenter

    reads: list[str] = []

    def list_revisions(apis: object, namespace: str, deployment: str) -> list[Any]:
        reads.append(f"{namespace}/{deployment}")
        return []

    monkeypatch.setattr(presenter, "list_revisions", list_revisions)
    catalog = parse_catalog(
        {
            "services": [
                {
                    "name": "checkout",
                    "namespace": "shop",
                    "deployment": "checkout",
                    "channel": "C0ALERTS",
                    "environment": "staging",
                    "match": {"service": "checkout"},
                }
            ]
        }
    )
    service = catalog.services[0]
    cache = presenter.RevisionCache(apis=None, ttl_seconds=60)  # type: ignore[arg-type]

    cache.get(service)
    cache.get(service)
    assert reads == ["shop/checkout"]
    cache.forget("checkout")
    cache.get(service)
    assert reads == ["shop/checkout", "shop/checkout"]
