"""Where a rollback goes: the one answer every surface gives.

The alert card's "Last stable", the confirmation modal, ``/rollback history``, ``drill``
and automatic triggers all ask ``choose``; none has a fallback of its own. A revision is
a candidate only on evidence:

* the bot verified it healthy (a rollback to it ended done with the health gate green),
  or a person marked it good (``/rollback mark <service> <revision> good``);
* or it ran alert-free for the service's ``stable_window_seconds``.

A release the bot rolled back from (or a person marked bad) is never proposed, and a
request to it needs an explicit override. With no evidence there is no target: the
person is asked to choose, with what is known about each revision.

A release is a pod template, identified by its ``pod-template-hash`` (the ReplicaSet's
identity, which survives re-numbering by a rollback), else by its images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from rollback_bot.catalog import Service
from rollback_bot.clock import Clock
from rollback_bot.executors.base import Plan
from rollback_bot.ids import format_incident_id, format_rollback_id
from rollback_bot.kube.model import ExecutionError
from rollback_bot.kube.revisions import HASH_LABEL, Revision, known_stable, same_template
from rollback_bot.rollbacks.policies import Principal, may_mark
from rollback_bot.storage.models import ReleaseVerdict
from rollback_bot.storage.uow import UnitOfWork, UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind

BAD, GOOD = "bad", "good"
#: Strategies whose target is a revision of the Deployment (the others pick a slot/canary).
REVISION_STRATEGIES = frozenset({"instant", "helm"})


@dataclass(frozen=True)
class Verdict:
    verdict: str  # "bad" | "good"
    source: str  # "rollback" (rolled back from) | "verified" | "person"
    actor: str
    at: datetime
    reason: str = ""
    incident_id: int | None = None
    rollback_id: int | None = None
    template_hash: str | None = None
    images: str = ""

    @classmethod
    def of(cls, row: ReleaseVerdict) -> Verdict:
        return cls(
            verdict=row.verdict,
            source=row.source,
            actor=row.actor,
            at=row.at,
            reason=row.reason or "",
            incident_id=row.incident_id,
            rollback_id=row.rollback_id,
            template_hash=row.template_hash,
            images=row.images or "",
        )

    def applies_to(self, revision: Revision) -> bool:
        mine = template_hash(revision)
        if self.template_hash and mine:
            return self.template_hash == mine
        return bool(self.images) and self.images == (revision.image or "")

    def describe(self) -> str:
        where = ", ".join(
            x
            for x in (
                format_rollback_id(self.rollback_id) if self.rollback_id else "",
                format_incident_id(self.incident_id) if self.incident_id else "",
            )
            if x
        )
        where = f" ({where})" if where else ""
        why = f": {self.reason}" if self.reason else ""
        if self.source == "rollback":
            return f"known bad: rolled back from{where}{why}"
        if self.source == "verified":
            return f"verified healthy by the bot{where}"
        return f"marked {self.verdict} by <@{self.actor}>{why}"


@dataclass(frozen=True)
class Known:
    """One revision and what the bot knows about it."""

    number: int
    image: str | None
    template_hash: str | None
    current: bool
    verdict: Verdict | None  # the newest verdict on this release
    quiet: bool  # ran alert-free for the stable window

    @property
    def bad(self) -> bool:
        return self.verdict is not None and self.verdict.verdict == BAD

    @property
    def stable(self) -> bool:
        if self.bad:
            return False
        return self.quiet or (self.verdict is not None and self.verdict.verdict == GOOD)

    def what_is_known(self, window_seconds: int) -> str:
        parts = ["running now"] if self.current else []
        if self.verdict is not None:
            parts.append(self.verdict.describe())
        if self.quiet and not self.bad:
            parts.append(f"ran alert-free for {_duration(window_seconds)}")
        return "; ".join(parts) or "nothing known (not verified, not alert-free long enough)"


@dataclass(frozen=True)
class TargetChoice:
    service: str
    window_seconds: int
    revisions: tuple[Known, ...]  # newest first
    current: Known | None
    target: Known | None

    def find(self, number: int) -> Known | None:
        return next((k for k in self.revisions if k.number == number), None)

    def no_target_text(self) -> str:
        """Said when there is no evidence to choose from: ask the person, with what is known."""
        lines = [
            f"No revision of `{self.service}` is known stable: none was verified healthy by "
            f"the bot or marked good, and none ran alert-free for "
            f"{_duration(self.window_seconds)}. Choose one with "
            f"`/rollback {self.service} --to <revision>`:"
        ]
        lines += [
            f"• revision {k.number} `{k.image or '?'}`: {k.what_is_known(self.window_seconds)}"
            for k in self.revisions
        ]
        return "\n".join(lines)


def template_hash(revision: Revision) -> str | None:
    if revision.identity:
        return revision.identity
    labels = (revision.template.get("metadata") or {}).get("labels") or {}
    found = labels.get(HASH_LABEL)
    return str(found) if found else None


def latest_verdict(revision: Revision, verdicts: Sequence[Verdict]) -> Verdict | None:
    return next((v for v in reversed(verdicts) if v.applies_to(revision)), None)


def choose(
    service: str,
    revisions: Sequence[Revision],
    verdicts: Sequence[Verdict],
    *,
    alert_times: Iterable[datetime],
    window_seconds: int,
    now: datetime,
) -> TargetChoice:
    """The pure choice: the newest revision known stable that is not what runs now.

    ``revisions`` oldest first (as ``list_revisions`` returns them), ``verdicts``
    oldest first.
    """
    quiet = set(
        known_stable(
            revisions,
            alert_times=alert_times,
            window=timedelta(seconds=window_seconds),
            now=now,
        )
    )
    live = revisions[-1] if revisions else None
    known = tuple(
        Known(
            number=r.number,
            image=r.image,
            template_hash=template_hash(r),
            current=r is live,
            verdict=latest_verdict(r, verdicts),
            quiet=r.number in quiet,
        )
        for r in reversed(revisions)
    )
    by_number = {r.number: r for r in revisions}
    target = next(
        (
            k
            for k in known
            if not k.current
            and k.stable
            and not (live and same_template(by_number[k.number].template, live.template))
        ),
        None,
    )
    return TargetChoice(
        service=service,
        window_seconds=window_seconds,
        revisions=known,
        current=known[0] if known else None,
        target=target,
    )


def refuse_unchanged(plan: Plan, choice: TargetChoice | None) -> None:
    """A rollback to what already runs is refused before anyone is asked to approve."""
    if plan.detail.get("noop"):
        raise ExecutionError(
            f"{choice.service if choice else 'the service'} already runs revision "
            f"{plan.to_revision} (`{plan.to_image or '?'}`): there is nothing to roll back to "
            "there. See `/rollback history` for the other revisions."
        )


def known_bad_warning(known: Known) -> str:
    verdict = known.verdict
    assert verdict is not None
    return (
        f":warning: Revision {known.number} (`{known.image or '?'}`) is KNOWN BAD "
        f"({verdict.describe()}); requested with the override."
    )


def check_target(plan: Plan, choice: TargetChoice, *, force_bad: bool) -> Plan:
    """Refuse a known-bad target without the override; with it, say so in the plan."""
    refuse_unchanged(plan, choice)
    known = choice.find(plan.to_revision) if plan.to_revision is not None else None
    if known is None:
        return plan
    detail = {**plan.detail, "target_known": known.what_is_known(choice.window_seconds)}
    if known.stable:
        detail["target_stable"] = True
    if not known.bad:
        return replace(plan, detail=detail)
    if not force_bad:
        raise ExecutionError(
            f"revision {known.number} (`{known.image or '?'}`) is known bad "
            f"({known.verdict.describe() if known.verdict else ''}). To roll back to it anyway, "
            f"add `--force-bad` (or tick the override in the confirmation)."
        )
    detail["known_bad"] = known_bad_warning(known)
    return replace(plan, warnings=(known_bad_warning(known), *plan.warnings), detail=detail)


class Targets:
    """Reads the evidence (verdicts, alert times) and asks ``choose``."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        read_revisions: Callable[[Service], list[Revision]],
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.read = read_revisions

    def evidence(
        self, service: str, windows: Sequence[tuple[datetime, datetime]]
    ) -> tuple[list[Verdict], list[datetime]]:
        """The verdicts, and for each window the first alert that fired in it.

        ``choose`` only asks whether an alert fired within a revision's stable window,
        so the first one per window answers it as the whole history would.
        """
        with self._uow(read_only=True) as uow:
            verdicts = [Verdict.of(v) for v in uow.verdicts.list_for_service(service=service)]
            alert_times = uow.timeline.first_in_windows(
                service=service, kind=TimelineKind.ALERT_FIRING, windows=windows
            )
        return verdicts, alert_times

    def choice(self, service: Service, revisions: Sequence[Revision] | None = None) -> TargetChoice:
        revisions = list(revisions) if revisions is not None else self.read(service)
        window = timedelta(seconds=service.stable_window_seconds)
        windows = [(r.created_at, r.created_at + window) for r in revisions if r.created_at]
        verdicts, alert_times = self.evidence(service.name, windows)
        return choose(
            service.name,
            revisions,
            verdicts,
            alert_times=alert_times,
            window_seconds=service.stable_window_seconds,
            now=self._clock.now(),
        )


@dataclass(frozen=True)
class MarkReply:
    ok: bool
    text: str


class ReleaseMarks:
    """``/rollback mark <service> <revision> good|bad [reason]``: a person's verdict."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        targets: Targets,
        principal: Callable[[Service, str], Principal],
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._targets = targets
        self._principal = principal

    def mark(
        self, service: Service, number: int, verdict: str, *, user: str, reason: str
    ) -> MarkReply:
        allowed = may_mark(service, self._principal(service, user))
        if not allowed:
            return MarkReply(False, f"Refused: {allowed.reason}.")
        try:
            revisions = self._targets.read(service)
        except Exception as exc:  # an unreachable cluster is said, not raised
            return MarkReply(False, f"Cannot read the revisions of {service.label}: {exc}")
        found = next((r for r in revisions if r.number == number), None)
        if found is None:
            listed = ", ".join(str(r.number) for r in revisions) or "none"
            return MarkReply(
                False, f"`{number}` is not a revision of `{service.name}`. Known: {listed}."
            )
        with self._uow() as uow:
            incident = uow.incidents.open_for_service(service=service.name)
            record_verdict(
                uow,
                service=service.name,
                template_hash=template_hash(found),
                images=found.image,
                verdict=verdict,
                source="person",
                actor=user,
                at=self._clock.now(),
                reason=reason,
                incident_id=incident.id if incident else None,
            )
            uow.commit()
        return MarkReply(
            True,
            f"Revision {number} of {service.name} (`{found.image or '?'}`) marked {verdict}"
            + (f": {reason}" if reason else "")
            + ".",
        )


def record_verdict(
    uow: UnitOfWork,
    *,
    service: str,
    template_hash: str | None,
    images: str | None,
    verdict: str,
    source: str,
    actor: str,
    at: datetime,
    reason: str = "",
    incident_id: int | None = None,
    rollback_id: int | None = None,
) -> None:
    """One verdict and its timeline entry, in the caller's transaction."""
    uow.verdicts.add(
        service=service,
        template_hash=template_hash,
        images=images or "",
        verdict=verdict,
        source=source,
        actor=actor,
        at=at,
        reason=reason,
        incident_id=incident_id,
        rollback_id=rollback_id,
    )
    what = {
        "rollback": "rolled back from: known bad",
        "verified": "verified healthy",
        "person": f"marked {verdict}",
    }[source]
    uow.timeline.append(
        at=at,
        actor=actor,
        kind=TimelineKind.RELEASE_VERDICT,
        summary=f"release `{images or '?'}` of {service} {what}"
        + (f" by {actor}" if source == "person" else "")
        + (f": {reason}" if reason else ""),
        incident_id=incident_id,
        rollback_id=rollback_id,
        service=service,
        data={
            "verdict": verdict,
            "source": source,
            "template_hash": template_hash,
            "images": images or "",
        },
    )


def _duration(seconds: int) -> str:
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
