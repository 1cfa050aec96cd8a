"""Who may do what: pure predicates over a service's policy and a person.

No I/O here: group membership is resolved beforehand (``Principal.groups``, asked
of a ``Membership`` such as Slack's user groups) so that every decision can be
unit-tested and explained. A ``Verdict`` always
carries the reason, because a refusal in an incident must say why.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from rollback_bot.catalog import Audience, Service


class Membership(Protocol):
    """Who is in which of the groups a policy names (Slack user groups, in the bot)."""

    def groups_of(self, user_id: str, candidates: Iterable[str]) -> frozenset[str]:
        """The subset of ``candidates`` that ``user_id`` belongs to."""
        ...


class MembershipUnavailable(Exception):
    """Some groups could not be read (Slack failed): ``known`` holds the ones that could."""

    def __init__(self, known: frozenset[str], failed: dict[str, str]) -> None:
        self.known = known
        self.failed = failed
        super().__init__(", ".join(f"{g}: {e}" for g, e in sorted(failed.items())))


@dataclass(frozen=True)
class Principal:
    user_id: str
    groups: frozenset[str] = frozenset()
    # Groups whose membership could not be checked (Slack failed): a refusal says so.
    unchecked: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Verdict(True, "allowed")


def _in(audience: Audience, who: Principal) -> bool:
    return who.user_id in audience.users or bool(who.groups & set(audience.usergroups))


def _unchecked(who: Principal, *audiences: Audience) -> Verdict | None:
    """The refusal to give when the answer hung on groups that could not be read."""
    groups = sorted(who.unchecked & {g for a in audiences for g in a.usergroups})
    if not groups:
        return None
    return Verdict(
        False,
        f"could not check group membership of {', '.join(groups)} (Slack did not answer); "
        "try again in a moment",
    )


def _describe(audience: Audience) -> str:
    names = [f"<@{u}>" for u in audience.users] + [f"<!subteam^{g}>" for g in audience.usergroups]
    return ", ".join(names) if names else "nobody"


def approvals_required(service: Service) -> int:
    """Production defaults to the two-person rule: one approval by someone else."""
    return service.approvals_required


def may_request(service: Service, who: Principal) -> Verdict:
    policy = service.policy
    if _in(policy.requesters, who) or _in(policy.approvers, who):
        return ALLOW
    unchecked = _unchecked(who, policy.requesters, policy.approvers)
    if unchecked is not None:
        return unchecked
    return Verdict(
        False,
        f"you are not allowed to request rollbacks of {service.label}: "
        f"requesters are {_describe(policy.requesters)}",
    )


def may_approve(
    service: Service, who: Principal, *, requested_by: str, already_approved_by: Collection[str]
) -> Verdict:
    if who.user_id == requested_by:
        return Verdict(False, "you requested this rollback; someone else must approve it")
    if who.user_id in already_approved_by:
        return Verdict(False, "you already approved this rollback; it needs another person")
    if not _in(service.policy.approvers, who):
        unchecked = _unchecked(who, service.policy.approvers)
        if unchecked is not None:
            return unchecked
        return Verdict(
            False,
            f"you are not an approver for {service.label}: "
            f"approvers are {_describe(service.policy.approvers)}",
        )
    return ALLOW


def may_deny(service: Service, who: Principal) -> Verdict:
    """Approvers deny (a requester withdraws their request with Cancel/Abort instead)."""
    if _in(service.policy.approvers, who):
        return ALLOW
    unchecked = _unchecked(who, service.policy.approvers)
    if unchecked is not None:
        return unchecked
    return Verdict(
        False,
        f"you may not deny rollbacks of {service.label}: "
        f"approvers are {_describe(service.policy.approvers)}",
    )


def may_operate(service: Service, who: Principal) -> Verdict:
    """Pause, resume, abort and cancel: anyone who could request or approve."""
    return _requester_or_approver(service, who, "pause, resume or abort rollbacks of {label}")


def may_act_on_alerts(service: Service, who: Principal, *, what: str) -> Verdict:
    """Silence an alert, export a postmortem: the service's requesters and approvers."""
    return _requester_or_approver(service, who, what)


def _requester_or_approver(service: Service, who: Principal, doing: str) -> Verdict:
    """The rule of every verb that anyone who could request or approve may use.

    ``doing`` names the verb for the refusal; ``{label}`` in it becomes the service's label.
    """
    if _in(service.policy.requesters, who) or _in(service.policy.approvers, who):
        return ALLOW
    unchecked = _unchecked(who, service.policy.requesters, service.policy.approvers)
    if unchecked is not None:
        return unchecked
    phrase = (
        doing.format(label=service.label) if "{label}" in doing else f"{doing} for {service.label}"
    )
    return Verdict(
        False,
        f"you may not {phrase}: "
        f"ask {_describe(service.policy.requesters)} or {_describe(service.policy.approvers)}",
    )


def in_service_channel(service: Service, channel: str | None, *, what: str) -> Verdict:
    """What a verb posts goes to the service's own channel, never one the caller picks."""
    if channel == service.channel:
        return ALLOW
    return Verdict(False, f"{what} for {service.label} only in its channel <#{service.channel}>")


def automation_allowed(service: Service) -> Verdict:
    if service.policy.automation:
        return ALLOW
    return Verdict(False, f"automation is off for {service.label} (policy.automation: false)")


def may_mark(service: Service, who: Principal) -> Verdict:
    """Mark a release good or bad: the requesters and approvers of the service."""
    return _requester_or_approver(service, who, "mark releases of {label}")


def may_declare_mitigated(service: Service, who: Principal) -> Verdict:
    """Declare an incident mitigated: the requesters and approvers of its service."""
    return _requester_or_approver(service, who, "declare incidents of {label} mitigated")


def may_add_note(service: Service, who: Principal) -> Verdict:
    """Add a note to an incident's timeline: anyone who could request or approve for it."""
    return _requester_or_approver(service, who, "add notes to incidents of {label}")
