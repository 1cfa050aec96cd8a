"""The ``/rollback`` slash command: parse, call one service, answer.

Slack wants an answer within 3 seconds, so every path acknowledges first:
parse errors and quick refusals go back in the acknowledgement itself
(ephemeral), slower work answers through ``respond`` afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse, Respond

from rollback_bot.incidents.queries import NotFound
from rollback_bot.rollbacks.lifecycle import Move
from rollback_bot.rollbacks.model import RequestSpec
from rollback_bot.services import Services
from rollback_bot.slack import commands as c
from rollback_bot.slack.ui.command_help import help_blocks
from rollback_bot.slack.ui.history import history_blocks
from rollback_bot.slack.ui.notes import note_reply
from rollback_bot.slack.ui.open_incidents import open_incident_blocks
from rollback_bot.slack.ui.status import status_blocks

Handler = Callable[[Services, Any, dict[str, Any], Respond], None]

#: Where the matcher leaves its parse of the command for the acknowledgement.
_PARSED = "rollback_command"


def _request(s: Services, cmd: c.RequestRollback, body: dict[str, Any], respond: Respond) -> None:
    spec = RequestSpec(
        service=cmd.service,
        user=body["user_id"],
        to_revision=cmd.to_revision,
        strategy=cmd.strategy,
        reason=cmd.reason or "",
        drill=cmd.drill,
        force_bad=cmd.force_bad,
    )
    reply = s.conversations.open_request(
        spec, trigger_id=body["trigger_id"], channel=body["channel_id"]
    )
    if not reply.ok:
        respond(response_type="ephemeral", text=reply.text)


def _move(move: Move) -> Handler:
    def handle(s: Services, cmd: Any, body: dict[str, Any], respond: Respond) -> None:
        reply = s.rollbacks.operate(cmd.rollback_id, body["user_id"], move)
        respond(response_type="ephemeral", text=reply.text)

    return handle


def _approve(s: Services, cmd: c.Approve, body: dict[str, Any], respond: Respond) -> None:
    respond(
        response_type="ephemeral", text=s.rollbacks.approve(cmd.rollback_id, body["user_id"]).text
    )


def _deny(s: Services, cmd: c.Deny, body: dict[str, Any], respond: Respond) -> None:
    reply = s.rollbacks.deny(cmd.rollback_id, body["user_id"], cmd.reason or "")
    respond(response_type="ephemeral", text=reply.text)


def _status(s: Services, cmd: c.Status, body: dict[str, Any], respond: Respond) -> None:
    try:
        rows = s.queries.status(
            service=cmd.service, rollback_id=cmd.rollback_id, incident_id=cmd.incident_id
        )
    except NotFound as exc:
        respond(response_type="ephemeral", text=str(exc))
        return
    blocks = status_blocks(rows)
    if cmd.rollback_id is None and cmd.incident_id is None:
        incidents = s.queries.incident_list(service=cmd.service, open_only=True)
        blocks += open_incident_blocks(incidents)
    respond(response_type="ephemeral", text="Rollback status", blocks=blocks)


def _history(s: Services, cmd: c.History, body: dict[str, Any], respond: Respond) -> None:
    service = s.catalog.service(cmd.service)
    assert service is not None  # the parser only accepts catalog services
    try:
        rows, warnings = s.queries.history(service)
    except Exception as exc:
        respond(
            response_type="ephemeral", text=f"Cannot read the revisions of {service.label}: {exc}"
        )
        return
    respond(
        response_type="ephemeral",
        text=f"Revisions of {service.name}",
        blocks=history_blocks(service.name, rows, warnings),
    )


def _export(s: Services, cmd: c.Export, body: dict[str, Any], respond: Respond) -> None:
    reply = s.conversations.export(
        cmd.incident_id, cmd.fmt, channel=body["channel_id"], thread_ts=None, user=body["user_id"]
    )
    respond(response_type="ephemeral", text=reply.text)


def _kill_flag(s: Services, cmd: c.KillFlag, body: dict[str, Any], respond: Respond) -> None:
    reply = s.flags.kill(cmd.service, cmd.flag, user=body["user_id"])
    respond(response_type="ephemeral", text=reply.text)


def _mark(s: Services, cmd: c.MarkRelease, body: dict[str, Any], respond: Respond) -> None:
    service = s.catalog.service(cmd.service)
    assert service is not None  # the parser only accepts catalog services
    reply = s.marks.mark(
        service, cmd.revision, cmd.verdict, user=body["user_id"], reason=cmd.reason or ""
    )
    respond(response_type="ephemeral", text=reply.text)


def _mitigated(
    s: Services, cmd: c.DeclareMitigated, body: dict[str, Any], respond: Respond
) -> None:
    ok, text = s.incidents.declare_mitigated(
        cmd.incident_id, user=body["user_id"], reason=cmd.reason or ""
    )
    if ok:
        s.notifier.incident_changed(cmd.incident_id)  # its cards change their buttons
    respond(response_type="ephemeral", text=text)


def _resume_gitops(
    s: Services, cmd: c.ResumeGitOps, body: dict[str, Any], respond: Respond
) -> None:
    if s.gitops is None:
        respond(response_type="ephemeral", text="GitOps resume is not set up in this bot.")
        return
    respond(response_type="ephemeral", text=s.gitops.resume(cmd.rollback_id, body["user_id"]).text)


def _note(s: Services, cmd: c.Note, body: dict[str, Any], respond: Respond) -> None:
    if s.notes is None:
        respond(response_type="ephemeral", text="Notes are not available here.")
        return
    result = s.notes.add(cmd.incident_id, user=body["user_id"], text=cmd.text)
    respond(response_type="ephemeral", text=note_reply(result))


HANDLERS: dict[type, Handler] = {
    c.RequestRollback: _request,
    c.Approve: _approve,
    c.Deny: _deny,
    c.Pause: _move(Move.PAUSE),
    c.Resume: _move(Move.RESUME),
    c.Abort: _move(Move.ABORT),
    c.ResumeGitOps: _resume_gitops,
    c.Status: _status,
    c.History: _history,
    c.Export: _export,
    c.KillFlag: _kill_flag,
    c.MarkRelease: _mark,
    c.DeclareMitigated: _mitigated,
    c.Note: _note,
}


def register(app: App, services: Services) -> None:
    flags = {s.name: [f.name for f in s.flags] for s in services.catalog.services}

    def parse(body: dict[str, Any]) -> c.Command:
        return c.parse(body.get("text", ""), services=services.catalog.names, flags=flags)

    # The help answer is the same every time: built and serialised once (what
    # ``ack(response_type="ephemeral", text=..., blocks=...)`` would send, key for key).
    help_ = BoltResponse(
        status=200,
        body={"text": c.HELP_TEXT, "response_type": "ephemeral", "blocks": help_blocks()},
    )

    def answered_in_ack(body: dict[str, Any], context: BoltContext) -> bool:
        try:
            parsed: c.Command | c.CommandError = parse(body)
        except c.CommandError as exc:
            parsed = exc
        if not isinstance(parsed, c.Help | c.CommandError):
            return False  # the work parses it again, after the acknowledgement
        context[_PARSED] = parsed  # for answer(): one parse per acknowledgement
        return True

    def answer(ack: Ack, body: dict[str, Any], context: BoltContext) -> BoltResponse | None:
        """Help and parse errors: the whole answer is the acknowledgement; no work after."""
        parsed = context.get(_PARSED)
        if parsed is None:  # not through the matcher
            try:
                parsed = parse(body)
            except c.CommandError as exc:
                parsed = exc
        if isinstance(parsed, c.CommandError):
            ack(response_type="ephemeral", text=str(parsed))
            return None
        return BoltResponse(status=help_.status, body=help_.body, headers=help_.headers)

    def acknowledge(ack: Ack) -> None:
        """Answers within Slack's 3 s; the work follows."""
        ack()

    def work(body: dict[str, Any], respond: Respond) -> None:
        try:
            cmd = parse(body)
        except c.CommandError:
            return  # it parsed a moment ago; only a catalog reload in between gets here
        handler = HANDLERS.get(type(cmd))
        if handler is not None:
            services.metrics.slack_requests.labels(kind=type(cmd).__name__).inc()
            handler(services, cmd, body, respond)

    app.command("/rollback", matchers=[answered_in_ack])(answer)
    app.command("/rollback")(ack=acknowledge, lazy=[work])
