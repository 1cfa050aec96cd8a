"""The verbs' grammars and ``parse``: tokens in, one typed command out."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping, Sequence

from rollback_bot.ids import (
    format_incident_id,
    format_rollback_id,
    parse_incident_id,
    parse_rollback_id,
)
from rollback_bot.slack.commands.errors import CommandError, did_you_mean, known_services, suggest
from rollback_bot.slack.commands.model import (
    EXPORT_FORMATS,
    Abort,
    Approve,
    Command,
    DeclareMitigated,
    Deny,
    Export,
    Help,
    History,
    KillFlag,
    MarkRelease,
    Note,
    Pause,
    RequestRollback,
    Resume,
    ResumeGitOps,
    Status,
)
from rollback_bot.slack.commands.tokens import (
    REVISION_NUMBER,
    free_text,
    parse_revision,
    parse_strategy,
    split_options,
    tokens_of,
)
from rollback_bot.slack.commands.verbs import REQUEST_USAGE, REQUEST_VERB, VERB_NAMES, usage_of
from rollback_bot.slack.ui.mrkdwn import code as _c


def _service(token: str, services: Collection[str], usage: str) -> str:
    by_lower = {s.lower(): s for s in services}
    found = by_lower.get(token.lower())
    if found is not None:
        return found
    hint = did_you_mean(token, services) or known_services(services)
    raise CommandError(f"Unknown service {_c(token)}.{hint}", usage)


def _rollback_id(verb: str, args: Sequence[str]) -> int:
    usage = usage_of(verb)
    if not args:
        raise CommandError(f"{_c(verb)} needs a rollback id, like `R-12`.", usage)
    rollback_id = parse_rollback_id(args[0])
    if rollback_id is None:
        if re.fullmatch(r"inc-?[0-9]+", args[0], re.IGNORECASE):
            raise CommandError(
                f"{_c(args[0])} is an incident; {_c(verb)} takes a rollback id, like `R-12`. "
                "See `/rollback status`.",
                usage,
            )
        raise CommandError(f"{_c(args[0])} is not a rollback id, like `R-12`.", usage)
    return rollback_id


def _no_more(verb: str, extra: Sequence[str]) -> None:
    if extra:
        raise CommandError(f"Unexpected {_c(' '.join(extra))} after {_c(verb)}.", usage_of(verb))


def _request(
    args: Sequence[str], services: Collection[str], *, drill: bool, verb: str
) -> RequestRollback:
    usage = usage_of(verb)
    allowed = ("--to", "--strategy") if drill else ("--to", "--strategy", "--reason")
    force_bad = any(a.lower() == "--force-bad" for a in args)
    args = [a for a in args if a.lower() != "--force-bad"]
    positional, options = split_options(args, allowed, usage)
    if not positional:
        raise CommandError(f"Which service?{known_services(services)}", usage)
    service = _service(positional[0], services, usage)
    if len(positional) > 1:
        extra = " ".join(positional[1:])
        hint = "" if drill else ' A reason goes after `--reason "..."`.'
        raise CommandError(f"Unexpected {_c(extra)} after {_c(service)}.{hint}", usage)
    to = options.get("--to")
    strategy = options.get("--strategy")
    return RequestRollback(
        service=service,
        to_revision=parse_revision(to, usage) if to is not None else None,
        strategy=parse_strategy(strategy, usage) if strategy is not None else None,
        reason=options.get("--reason"),
        drill=drill,
        force_bad=force_bad,
    )


def _mark(args: Sequence[str], services: Collection[str]) -> MarkRelease:
    usage = usage_of("mark")
    if len(args) < 3:
        raise CommandError("`mark` needs a service, a revision and good or bad.", usage)
    service = _service(args[0], services, usage)
    number = REVISION_NUMBER.fullmatch(args[1])
    if number is None or int(number.group(1)) == 0:
        raise CommandError(f"{_c(args[1])} is not a revision number, like `41`.", usage)
    verdict = args[2].lower()
    if verdict not in ("good", "bad"):
        raise CommandError(f"{_c(args[2])}: say `good` or `bad`.", usage)
    reason = " ".join(args[3:]).strip() or None
    return MarkRelease(
        service, int(number.group(1)), "good" if verdict == "good" else "bad", reason
    )


def _mitigated(args: Sequence[str]) -> DeclareMitigated:
    usage = usage_of("mitigated")
    if not args:
        raise CommandError("`mitigated` needs an incident id, like `INC-7`.", usage)
    incident_id = parse_incident_id(args[0])
    if incident_id is None:
        raise CommandError(f"{_c(args[0])} is not an incident id, like `INC-7`.", usage)
    return DeclareMitigated(incident_id, " ".join(args[1:]).strip() or None)


def _note(text: str) -> Note:
    """``note <incident> <text>``: the text is taken as typed, never split into tokens."""
    usage = usage_of("note")
    args = free_text(text, 2)[1:]
    if not args:
        raise CommandError("`note` needs an incident id, like `INC-7`, and the note.", usage)
    incident_id = parse_incident_id(args[0])
    if incident_id is None:
        raise CommandError(f"{_c(args[0])} is not an incident id, like `INC-7`.", usage)
    note = args[1].strip() if len(args) > 1 else ""
    if not note:
        raise CommandError(f"What is the note? Write it after {_c(args[0])}.", usage)
    return Note(incident_id, note)


def _deny(args: Sequence[str]) -> Deny:
    rollback_id = _rollback_id("deny", args)
    rest = list(args[1:])
    if rest and rest[0].lower().partition("=")[0] == "--reason":
        _, options = split_options(rest, ("--reason",), usage_of("deny"))
        reason = options["--reason"]
    else:
        # Free text: a reason may well mention an option ("use --to 40").
        reason = " ".join(rest).strip()
    return Deny(rollback_id, reason or None)


def _status(args: Sequence[str], services: Collection[str]) -> Status:
    if not args:
        return Status()
    _no_more("status", args[1:])
    token = args[0]
    by_lower = {s.lower(): s for s in services}
    if token.lower() in by_lower:
        name = by_lower[token.lower()]
        return Status(target=name, service=name)
    rollback_id = parse_rollback_id(token)
    if rollback_id is not None:
        return Status(target=format_rollback_id(rollback_id), rollback_id=rollback_id)
    if re.fullmatch(r"inc-?[0-9]{1,9}", token, re.IGNORECASE):
        incident_id = parse_incident_id(token)
        if incident_id is not None:
            return Status(target=format_incident_id(incident_id), incident_id=incident_id)
    hint = did_you_mean(token, services) or known_services(services)
    raise CommandError(f"{_c(token)} is neither a service nor an id.{hint}", usage_of("status"))


def _history(args: Sequence[str], services: Collection[str]) -> History:
    usage = usage_of("history")
    if not args:
        raise CommandError(f"`history` needs a service.{known_services(services)}", usage)
    _no_more("history", args[1:])
    return History(_service(args[0], services, usage))


def _export(args: Sequence[str]) -> Export:
    usage = usage_of("export")
    positional, options = split_options(args, ("--format",), usage)
    if not positional:
        raise CommandError("`export` needs an incident id, like `INC-7`.", usage)
    _no_more("export", positional[1:])
    incident_id = parse_incident_id(positional[0])
    if incident_id is None:
        raise CommandError(f"{_c(positional[0])} is not an incident id, like `INC-7`.", usage)
    fmt = options.get("--format", "md").lower()
    if fmt == "markdown":
        fmt = "md"
    if fmt not in EXPORT_FORMATS:
        raise CommandError(f"Unknown format {_c(fmt)}; use `md` or `json`.", usage)
    return Export(incident_id, "json" if fmt == "json" else "md")


def _flag(
    args: Sequence[str],
    services: Collection[str],
    flags: Mapping[str, Collection[str]] | None,
) -> KillFlag:
    usage = usage_of("flag")
    if not args:
        raise CommandError(
            f"`flag` needs a service and a flag name.{known_services(services)}", usage
        )
    service = _service(args[0], services, usage)
    known = flags.get(service, ()) if flags is not None else None
    if len(args) < 2:
        listed = ", ".join(f"{_c(f)}" for f in sorted(known)) if known else ""
        hint = f" Flags of {_c(service)}: {listed}." if listed else ""
        raise CommandError(f"`flag` needs a flag name after {_c(service)}.{hint}", usage)
    _no_more("flag", args[2:])
    flag = args[1]
    if known is not None and flag not in known:
        hint = did_you_mean(flag, known) or (
            f" Flags of {_c(service)}: {', '.join(f'{_c(f)}' for f in sorted(known))}."
            if known
            else f" {_c(service)} has no flags in the catalog."
        )
        raise CommandError(f"Unknown flag {_c(flag)} for {_c(service)}.{hint}", usage)
    return KillFlag(service, flag)


def _unknown(word: str, services: Collection[str]) -> CommandError:
    verbs = sorted(VERB_NAMES)
    verb = suggest(word, verbs)
    service = suggest(word, services)
    if service is not None and (
        verb is None
        or difflib.SequenceMatcher(None, word, service).ratio()
        >= difflib.SequenceMatcher(None, word, verb).ratio()
    ):
        return CommandError(
            f"Unknown service {_c(word)}. Did you mean {_c(service)}?", REQUEST_USAGE
        )
    if verb is not None:
        return CommandError(f"Unknown command {_c(word)}. Did you mean {_c(verb)}?", usage_of(verb))
    return CommandError(
        f"{_c(word)} is neither a command nor a service.{known_services(services)} "
        "See `/rollback help` for every command.",
        REQUEST_USAGE,
    )


_ID_VERBS: dict[str, Callable[[int], Command]] = {
    "approve": Approve,
    "pause": Pause,
    "resume": Resume,
    "abort": Abort,
    "resume-gitops": ResumeGitOps,
}


def parse(
    text: str,
    *,
    services: Collection[str],
    flags: Mapping[str, Collection[str]] | None = None,
) -> Command:
    """Parse the text after ``/rollback``; raise ``CommandError`` for anything else.

    ``services`` are the catalog's service names. ``flags`` (service -> flag
    names), when given, lets ``flag`` check the flag name too.
    """
    first = free_text(text, 1)
    if first and first[0].lower() == "note":
        return _note(text)  # before tokenising: a note's quotes and apostrophes are its own
    tokens = tokens_of(text)
    if not tokens:
        return Help()
    head, args = tokens[0], tokens[1:]
    verb = head.lower()
    if verb in ("help", "-h", "--help", "?"):
        return Help()
    if verb == REQUEST_VERB:
        return _request(args, services, drill=False, verb=REQUEST_VERB)
    if verb == "drill":
        return _request(args, services, drill=True, verb="drill")
    if verb in _ID_VERBS:
        rollback_id = _rollback_id(verb, args)
        _no_more(verb, args[1:])
        return _ID_VERBS[verb](rollback_id)
    if verb == "deny":
        return _deny(args)
    if verb == "status":
        return _status(args, services)
    if verb == "history":
        return _history(args, services)
    if verb == "export":
        return _export(args)
    if verb == "flag":
        return _flag(args, services, flags)
    if verb == "mark":
        return _mark(args, services)
    if verb == "mitigated":
        return _mitigated(args)
    if head.startswith("-"):
        raise CommandError(f"Which service?{known_services(services)}", REQUEST_USAGE)
    if head.lower() in {s.lower() for s in services}:
        return _request(tokens, services, drill=False, verb="")
    raise _unknown(head, services)
