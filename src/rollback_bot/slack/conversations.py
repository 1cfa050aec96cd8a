"""Slack interactions that take more than one call: the confirmation modal,
the postmortem upload, and "Silence 1h".

Each method is what one listener calls after acknowledging Slack; it returns
a ``Reply`` for the person when something must be said to them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from rollback_bot.catalog import Catalog
from rollback_bot.clock import Clock
from rollback_bot.ids import format_incident_id
from rollback_bot.incidents.queries import NotFound, Queries
from rollback_bot.integrations.alertmanager import (
    AlertmanagerClient,
    AlertmanagerError,
    matchers,
)
from rollback_bot.kube.model import ExecutionError
from rollback_bot.rollbacks.drift import Seen
from rollback_bot.rollbacks.model import Reply, RequestSpec
from rollback_bot.rollbacks.policies import (
    approvals_required,
    in_service_channel,
    may_act_on_alerts,
)
from rollback_bot.rollbacks.service import RollbackService
from rollback_bot.slack.people import SlackPeople
from rollback_bot.slack.postmortem_upload import postmortem_upload
from rollback_bot.slack.presenter import Presenter
from rollback_bot.slack.ui.notices import loading_modal, message_modal
from rollback_bot.slack.ui.request_modal import request_modal
from rollback_bot.storage.uow import UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind

log = logging.getLogger(__name__)


def spec_to_metadata(
    spec: RequestSpec, channel: str | None, *, known_bad: bool = False, seen: Seen | None = None
) -> str:
    data: dict[str, Any] = {
        "service": spec.service,
        "to": spec.to_revision,
        "strategy": spec.strategy,
        "drill": spec.drill,
        "channel": channel,
    }
    if seen is not None:
        data["seen"] = seen.to_dict()  # the submission is refused if the cluster moved
    if spec.force_bad:
        data["force_bad"] = True  # `--force-bad` on the command: the override is given
    elif known_bad:
        data["known_bad"] = True  # the override must be ticked in the modal
    return json.dumps(data, separators=(",", ":"))


def form_not_opened(exc: Exception, *, what: str) -> str:
    """What to tell a person whose modal Slack would not open (or fill): nothing happened.

    A ``trigger_id`` lives three seconds and works once, so the usual cause is a slow or
    failing Slack; the person's way forward is to run the same command again.
    """
    if isinstance(exc, SlackApiError):
        cause = f"Slack answered `{exc.response.get('error') or exc.response.status_code}`"
    else:
        cause = "Slack could not be reached"
    return f"Could not open {what}: {cause}. Nothing was done; run it again in a moment."


def metadata_needs_override(metadata: str) -> bool:
    """The modal showed a known-bad target: submitting needs the override ticked."""
    try:
        return bool(json.loads(metadata).get("known_bad"))
    except (ValueError, AttributeError):
        return False


def spec_from_metadata(
    metadata: str, user: str, reason: str, *, force_bad: bool = False
) -> tuple[RequestSpec, str | None]:
    data = json.loads(metadata)
    if not isinstance(data, dict) or not isinstance(data.get("service"), str):
        raise ValueError("not the request modal's metadata")
    spec = RequestSpec(
        service=data["service"],
        user=user,
        to_revision=data.get("to"),
        strategy=data.get("strategy"),
        drill=bool(data.get("drill")),
        reason=reason,
        force_bad=force_bad or bool(data.get("force_bad")),
        seen=Seen.from_dict(data.get("seen")),
    )
    return spec, data.get("channel")


class Conversations:
    def __init__(
        self,
        *,
        slack: WebClient,
        rollbacks: RollbackService,
        presenter: Presenter,
        queries: Queries,
        catalog: Catalog,
        uow: UnitOfWorkFactory,
        clock: Clock,
        alertmanager: AlertmanagerClient | None = None,
    ) -> None:
        self._slack = slack
        self._rollbacks = rollbacks
        self._presenter = presenter
        self._queries = queries
        self._catalog = catalog
        self._uow = uow
        self._clock = clock
        self._alertmanager = alertmanager or AlertmanagerClient()
        self._people = SlackPeople(slack)

    def open_request(self, spec: RequestSpec, *, trigger_id: str, channel: str | None) -> Reply:
        """Policy first, then the modal opens at once and fills once the plan is read."""
        try:
            service, verdict = self._rollbacks.check_request(spec)
        except LookupError as exc:
            return Reply.refused(str(exc))
        if not verdict:
            self._rollbacks.refuse(
                service=service.name, actor=spec.user, what="request", why=verdict.reason
            )
            return Reply.refused(f"Refused: {verdict.reason}.")
        title = "Rollback drill" if spec.drill else "Confirm rollback"
        form = f"the rollback form for {service.label}"
        try:
            opened = self._slack.views_open(trigger_id=trigger_id, view=loading_modal(title))
        except (SlackApiError, OSError) as exc:
            return Reply.refused(form_not_opened(exc, what=form))
        view_id = opened["view"]["id"]
        try:
            # Previewed with the override so the modal can show the warning and ask for it;
            # the submission carries the person's choice.
            plan = self._rollbacks.plan(replace(spec, force_bad=True))
        except (ExecutionError, LookupError) as exc:
            self._slack.views_update(view_id=view_id, view=message_modal(title, f":x: {exc}"))
            return Reply.refused(f"Cannot roll back {service.label}: {exc}")
        # The submission asks for exactly the revision shown, not a fresh choice.
        chosen = replace(spec, to_revision=plan.to_revision) if plan.strategy == "instant" else spec
        if spec.force_bad:  # the warning stays in the plan; no checkbox is asked for
            plan = replace(plan, detail={**plan.detail, "known_bad": None})
        preview = self._presenter.preview(
            service,
            plan,
            approvals=approvals_required(service),
            drill=spec.drill,
            reason=spec.reason,
            metadata=spec_to_metadata(
                chosen,
                channel,
                known_bad=bool(plan.detail.get("known_bad")),
                seen=Seen.of_plan(plan),
            ),
        )
        try:
            self._slack.views_update(view_id=view_id, view=request_modal(preview))
        except (SlackApiError, OSError) as exc:
            return Reply.refused(form_not_opened(exc, what=form))
        return Reply.success("")

    def export(
        self, incident_id: int, fmt: str, *, channel: str, thread_ts: str | None, user: str
    ) -> Reply:
        with self._uow(read_only=True) as uow:
            incident = uow.incidents.get(id=incident_id)
        service = self._catalog.service(incident.service) if incident else None
        if service is not None:
            who = self._rollbacks.principal(service, user)
            for verdict in (
                may_act_on_alerts(service, who, what="export postmortems"),
                in_service_channel(service, channel, what="postmortems are exported"),
            ):
                if not verdict:
                    self._rollbacks.refuse(
                        service=service.name,
                        actor=user,
                        what="export",
                        why=verdict.reason,
                        incident_id=incident_id,
                    )
                    return Reply.refused(f"Refused: {verdict.reason}.")
        try:
            upload = postmortem_upload(self._queries, incident_id, fmt, names=self._people)
        except NotFound as exc:
            return Reply.refused(str(exc))
        thread_ts = thread_ts or self._queries.incident_thread(incident_id, channel)
        try:
            # files_upload_v2 is Slack's two-step upload: files.getUploadURLExternal per
            # file, a POST of the bytes to each URL, then one files.completeUploadExternal
            # sharing both (the document and its picture) into the thread.
            self._slack.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                file_uploads=upload,
                initial_comment=f"Postmortem of {format_incident_id(incident_id)}, "
                f"exported by <@{user}>.",
            )
        except SlackApiError as exc:
            return Reply.refused(f"Slack refused the upload: {exc.response.get('error')}.")
        with self._uow() as uow:
            incident = uow.incidents.get(id=incident_id)
            uow.timeline.append(
                at=self._clock.now(),
                actor=user,
                kind=TimelineKind.POSTMORTEM_EXPORTED,
                summary=f"{user} exported the postmortem of "
                f"{format_incident_id(incident_id)} as {fmt}",
                incident_id=incident_id,
                service=incident.service if incident else None,
            )
            uow.commit()
        return Reply.success(f"Postmortem of {format_incident_id(incident_id)} uploaded.")

    def silence(self, group_id: int, *, user: str, hours: float = 1.0) -> Reply:
        """An Alertmanager silence (API v2) matching the group's common labels."""
        with self._uow(read_only=True) as uow:
            group = uow.alert_groups.get(id=group_id)
        if group is None:
            return Reply.refused("That alert group no longer exists.")
        service = self._catalog.service(group.service) if group.service else None
        if service is None:
            return Reply.refused(
                "That alert matches no catalog service: no policy lets you silence it."
            )
        if service is not None:
            verdict = may_act_on_alerts(
                service, self._rollbacks.principal(service, user), what="silence alerts"
            )
            if not verdict:
                self._rollbacks.refuse(
                    service=service.name,
                    actor=user,
                    what="silence",
                    why=verdict.reason,
                    incident_id=group.incident_id,
                )
                return Reply.refused(f"Refused: {verdict.reason}.")
        base = (
            service.health.alertmanager_url if service else None
        ) or self._catalog.alertmanager_url
        if not base:
            return Reply.refused("No Alertmanager is configured (catalog alertmanager_url).")
        labels: dict[str, Any] = {"alertname": group.alertname, **(group.labels or {})}
        now = self._clock.now()
        try:
            silence_id = self._alertmanager.silence(
                base,
                labels,
                starts=now,
                ends=now + timedelta(hours=hours),
                created_by=f"slack:{user}",
                comment=f"Silenced from Slack by {user} via rollback-bot",
            )
        except AlertmanagerError as exc:
            return Reply.refused(f"Alertmanager did not accept the silence: {exc}")
        with self._uow() as uow:
            uow.timeline.append(
                at=now,
                actor=user,
                kind=TimelineKind.ALERT_SILENCED,
                summary=f"{user} silenced {group.alertname} for {hours:g}h (silence {silence_id})",
                incident_id=group.incident_id,
                service=group.service,
                data={"silence_id": silence_id, "matchers": matchers(labels)},
            )
            uow.commit()
        return Reply.success(f"Silenced {group.alertname} for {hours:g}h (silence `{silence_id}`).")
