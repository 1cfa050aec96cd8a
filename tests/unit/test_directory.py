"""Group membership from Slack: a failed lookup is reported and never remembered."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from rollback_bot.clock import FakeClock
from rollback_bot.rollbacks.policies import MembershipUnavailable
from rollback_bot.slack.directory import GroupDirectory


class FlakySlack:
    def __init__(self) -> None:
        self.down = True
        self.asked = 0

    def usergroups_users_list(self, *, usergroup: str) -> dict[str, Any]:
        self.asked += 1
        if self.down:
            raise SlackApiError("fail", {"ok": False, "error": "service_unavailable"})
        return {"ok": True, "users": ["U0CAROL"]}


def test_a_failed_lookup_is_reported_and_asked_again_once_slack_is_back() -> None:
    slack = FlakySlack()
    directory = GroupDirectory(slack, FakeClock())  # type: ignore[arg-type]
    with pytest.raises(MembershipUnavailable) as failed:
        directory.groups_of("U0CAROL", ["S0SRE"])
    assert failed.value.failed == {"S0SRE": "service_unavailable"}
    slack.down = False  # no time passes: a cached failure would still refuse her
    assert directory.groups_of("U0CAROL", ["S0SRE"]) == frozenset({"S0SRE"})
    assert directory.groups_of("U0CAROL", ["S0SRE"]) == frozenset({"S0SRE"})
    assert slack.asked == 2  # the success is cached, the failure was not
