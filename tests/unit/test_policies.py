"""Who may do what: every policy predicate, and that every refusal says why."""

from __future__ import annotations

from typing import Any

import pytest

from rollback_bot.catalog import Service
from rollback_bot.rollbacks.policies import (
    Principal,
    approvals_required,
    automation_allowed,
    may_approve,
    may_deny,
    may_operate,
    may_request,
)


def _service(environment: str = "production", **policy: Any) -> Service:
    return Service.model_validate(
        {
            "name": "checkout",
            "deployment": "checkout",
            "environment": environment,
            "channel": "C0ALERTS",
            "match": {"service": "checkout"},
            "policy": {
                "requesters": {"users": ["U0ALICE"], "usergroups": ["S0ONCALL"]},
                "approvers": {"users": ["U0BOB"], "usergroups": ["S0SRE"]},
                **policy,
            },
        }
    )


ALICE = Principal("U0ALICE")
BOB = Principal("U0BOB")
CAROL_SRE = Principal("U0CAROL", frozenset({"S0SRE"}))
DAVE_ONCALL = Principal("U0DAVE", frozenset({"S0ONCALL"}))
MALLORY = Principal("U0MALLORY", frozenset({"S0OTHER"}))


def test_production_defaults_to_the_two_person_rule() -> None:
    assert approvals_required(_service("production")) == 1
    assert approvals_required(_service("staging")) == 0
    assert approvals_required(_service("staging", approvals=2)) == 2
    assert approvals_required(_service("production", approvals=0)) == 0


@pytest.mark.parametrize("who", [ALICE, DAVE_ONCALL, BOB, CAROL_SRE])
def test_requesters_and_approvers_may_request(who: Principal) -> None:
    assert may_request(_service(), who)


def test_others_may_not_request_and_are_told_who_may() -> None:
    verdict = may_request(_service(), MALLORY)
    assert not verdict
    assert "checkout/production" in verdict.reason
    assert "<@U0ALICE>" in verdict.reason and "<!subteam^S0ONCALL>" in verdict.reason


def test_approval_by_a_user_or_a_group_member() -> None:
    service = _service()
    assert may_approve(service, BOB, requested_by="U0ALICE", already_approved_by=())
    assert may_approve(service, CAROL_SRE, requested_by="U0ALICE", already_approved_by=())


def test_nobody_approves_their_own_request_even_an_approver() -> None:
    verdict = may_approve(_service(), BOB, requested_by="U0BOB", already_approved_by=())
    assert not verdict and "someone else" in verdict.reason


def test_one_person_counts_once() -> None:
    verdict = may_approve(_service(), BOB, requested_by="U0ALICE", already_approved_by=["U0BOB"])
    assert not verdict and "another person" in verdict.reason


def test_a_requester_is_not_an_approver() -> None:
    verdict = may_approve(_service(), DAVE_ONCALL, requested_by="U0ALICE", already_approved_by=())
    assert not verdict
    assert "not an approver for checkout/production" in verdict.reason
    assert "<!subteam^S0SRE>" in verdict.reason


def test_deny_is_for_approvers_and_operate_for_requesters_and_approvers() -> None:
    service = _service()
    for who in (ALICE, BOB, CAROL_SRE, DAVE_ONCALL):
        assert may_operate(service, who)
    for who in (BOB, CAROL_SRE):
        assert may_deny(service, who)
    for who in (ALICE, DAVE_ONCALL, MALLORY):  # requesters withdraw with Abort, not Deny
        verdict = may_deny(service, who)
        assert not verdict and "approvers are" in verdict.reason
    assert not may_deny(service, MALLORY)
    operate = may_operate(service, MALLORY)
    assert not operate and "checkout/production" in operate.reason


def test_automation_only_when_the_policy_allows_it() -> None:
    assert not automation_allowed(_service())
    assert "policy.automation" in automation_allowed(_service()).reason
    assert automation_allowed(_service(automation=True))


def test_an_empty_audience_is_described_as_nobody() -> None:
    service = _service(approvers={"users": [], "usergroups": []})
    verdict = may_approve(service, BOB, requested_by="U0ALICE", already_approved_by=())
    assert not verdict and "nobody" in verdict.reason


def test_a_group_slack_could_not_read_is_named_in_the_refusal() -> None:
    unsure = Principal("U0CAROL", unchecked=frozenset({"S0SRE"}))
    verdict = may_approve(_service(), unsure, requested_by="U0ALICE", already_approved_by=())
    assert not verdict
    assert "could not check group membership of S0SRE" in verdict.reason
    assert "not an approver" not in verdict.reason
    assert not may_deny(_service(), unsure)
    # A user listed by id needs no group: a failed lookup does not stand in the way.
    assert may_approve(
        _service(),
        Principal("U0BOB", unchecked=frozenset({"S0SRE"})),
        requested_by="U0ALICE",
        already_approved_by=(),
    )
