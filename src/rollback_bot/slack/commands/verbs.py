"""The verbs, their forms and examples: the help text and every error's usage line."""

from __future__ import annotations

from dataclasses import dataclass

from rollback_bot.slack.ui.mrkdwn import code as _c


@dataclass(frozen=True)
class Verb:
    name: str
    usage: str
    example: str
    summary: str


REQUEST_USAGE = (
    "/rollback <service> [--to <revision>] [--strategy instant|blue-green|gradual] "
    '[--reason "..."] [--force-bad]'
)

VERBS: tuple[Verb, ...] = (
    Verb(
        "",
        REQUEST_USAGE,
        '/rollback checkout --to 41 --reason "5xx after deploy"',
        "Request a rollback; a confirmation shows what will change and who must approve. "
        "Without --to, the last known stable revision (verified healthy, marked good, or "
        "alert-free for the stable window); a revision known bad needs --force-bad.",
    ),
    Verb("approve", "/rollback approve <id>", "/rollback approve R-12", "Approve a rollback."),
    Verb(
        "deny",
        "/rollback deny <id> [reason]",
        "/rollback deny R-12 wrong revision, use 40",
        "Deny a rollback.",
    ),
    Verb("pause", "/rollback pause <id>", "/rollback pause R-12", "Pause a running rollback."),
    Verb("resume", "/rollback resume <id>", "/rollback resume R-12", "Resume a paused rollback."),
    Verb("abort", "/rollback abort <id>", "/rollback abort R-12", "Abort a rollback."),
    Verb(
        "resume-gitops",
        "/rollback resume-gitops <id>",
        "/rollback resume-gitops R-12",
        "Resume the Argo CD / Flux reconciliation a rollback paused, once the fix is merged.",
    ),
    Verb(
        "status",
        "/rollback status [service|id]",
        "/rollback status checkout",
        "Active rollbacks and their step.",
    ),
    Verb(
        "history",
        "/rollback history <service>",
        "/rollback history checkout",
        "Revisions with image, age, and which are known stable.",
    ),
    Verb(
        "drill",
        "/rollback drill <service> [--to <revision>] [--strategy instant|blue-green|gradual]",
        "/rollback drill checkout --to 40",
        "The whole rollback path as a server-side dry run: nothing changes.",
    ),
    Verb(
        "export",
        "/rollback export <incident> [--format md|json|html]",
        "/rollback export INC-7 --format json",
        "Upload the incident's postmortem (and its timeline as a picture) to its thread.",
    ),
    Verb(
        "flag",
        "/rollback flag <service> <flag>",
        "/rollback flag checkout new-pricing",
        "Kill switch: turn a feature flag off (undoable).",
    ),
    Verb(
        "mark",
        "/rollback mark <service> <revision> good|bad [reason]",
        "/rollback mark checkout 41 bad leaks memory",
        "Say what is known about a revision: bad ones are never proposed, good ones may be.",
    ),
    Verb(
        "mitigated",
        "/rollback mitigated <incident> [reason]",
        "/rollback mitigated INC-7 error rate back to normal",
        "Declare an incident mitigated (the harm stopped) when no alert says so.",
    ),
    Verb(
        "note",
        "/rollback note <incident> <text>",
        "/rollback note INC-7 the 5xx started right after the payments deploy",
        "Add a note to an incident's timeline (and its postmortem), with your name.",
    ),
    Verb("help", "/rollback help", "/rollback help", "This list."),
)

_BY_NAME: dict[str, Verb] = {v.name: v for v in VERBS if v.name}
# `request` is the explicit form, for services whose name is also a verb.
REQUEST_VERB = "request"
VERB_NAMES: frozenset[str] = frozenset(_BY_NAME) | {REQUEST_VERB}


def usage_of(verb: str) -> str:
    """The right form of ``verb`` ("" or "request" for the bare rollback request)."""
    found = _BY_NAME.get(verb)
    return found.usage if found else REQUEST_USAGE


def _help_text() -> str:
    lines = ["*`/rollback` commands*"]
    for verb in VERBS:
        lines.append(f"• {_c(verb.usage)}: {verb.summary} Example: {_c(verb.example)}")
    lines.append(
        "Rollback ids are shown as `R-12` (`r12`, `#12` and `12` work too); "
        "incident ids as `INC-7` (`inc7` and `7` work too)."
    )
    lines.append(
        "A service named like a verb (say `status`) cannot be requested by the bare form: "
        "use `/rollback request &lt;service&gt; ...`."
    )
    return "\n".join(lines)


HELP_TEXT = _help_text()
