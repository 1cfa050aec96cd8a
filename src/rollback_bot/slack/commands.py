"""The `/rollback` grammar: text in, one typed command out, nothing else.

Parsing is kept apart from acting so that every way a person can mistype a
command during an incident is tested without Slack, a database or a cluster.
A mistake never escapes as a stack trace: ``parse`` raises only
``CommandError``, whose text says what was wrong and shows the right form, and
which the listener sends back as an ephemeral message.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from rollback_bot.ids import (
    format_incident_id,
    format_rollback_id,
    parse_incident_id,
    parse_rollback_id,
)
from rollback_bot.slack.ui.mrkdwn import code as _c

Strategy = Literal["instant", "blue-green", "gradual"]
ExportFormat = Literal["md", "json"]

STRATEGIES: tuple[Strategy, ...] = ("instant", "blue-green", "gradual")
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("md", "json")


# --- commands ---------------------------------------------------------------


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class RequestRollback:
    """Roll ``service`` back; a drill runs the same path with a server-side dry run."""

    service: str
    # None: the last known stable revision. int: a revision number. str: an
    # image tag or reference that the service layer resolves to a revision.
    to_revision: int | str | None = None
    strategy: Strategy | None = None  # None: the catalog's strategy
    reason: str | None = None
    drill: bool = False


@dataclass(frozen=True)
class Approve:
    rollback_id: int


@dataclass(frozen=True)
class Deny:
    rollback_id: int
    reason: str | None = None


@dataclass(frozen=True)
class Pause:
    rollback_id: int


@dataclass(frozen=True)
class Resume:
    rollback_id: int


@dataclass(frozen=True)
class Abort:
    rollback_id: int


@dataclass(frozen=True)
class Status:
    """``target`` is the canonical text (``checkout``, ``R-12``, ``INC-7``) or None for all."""

    target: str | None = None
    service: str | None = None
    rollback_id: int | None = None
    incident_id: int | None = None


@dataclass(frozen=True)
class History:
    service: str


@dataclass(frozen=True)
class Export:
    incident_id: int
    fmt: ExportFormat = "md"


@dataclass(frozen=True)
class KillFlag:
    """Turn a feature flag off: the fastest rollback when the change sits behind one."""

    service: str
    flag: str


Command = (
    Help
    | RequestRollback
    | Approve
    | Deny
    | Pause
    | Resume
    | Abort
    | Status
    | History
    | Export
    | KillFlag
)


# --- the verbs, their forms and examples (help and errors read these) -------


@dataclass(frozen=True)
class Verb:
    name: str
    usage: str
    example: str
    summary: str


_REQUEST_USAGE = (
    '/rollback <service> [--to <revision>] [--strategy instant|blue-green|gradual] [--reason "..."]'
)

VERBS: tuple[Verb, ...] = (
    Verb(
        "",
        _REQUEST_USAGE,
        '/rollback checkout --to 41 --reason "5xx after deploy"',
        "Request a rollback; a confirmation shows what will change and who must approve. "
        "Without --to, the last known stable revision.",
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
        "/rollback export <incident> [--format md|json]",
        "/rollback export INC-7 --format json",
        "Upload the incident's postmortem timeline to the thread.",
    ),
    Verb(
        "flag",
        "/rollback flag <service> <flag>",
        "/rollback flag checkout new-pricing",
        "Kill switch: turn a feature flag off (undoable).",
    ),
    Verb("help", "/rollback help", "/rollback help", "This list."),
)

_BY_NAME: dict[str, Verb] = {v.name: v for v in VERBS if v.name}
# `request` is the explicit form, for services whose name is also a verb.
_REQUEST_VERB = "request"
VERB_NAMES: frozenset[str] = frozenset(_BY_NAME) | {_REQUEST_VERB}


def usage_of(verb: str) -> str:
    """The right form of ``verb`` ("" or "request" for the bare rollback request)."""
    found = _BY_NAME.get(verb)
    return found.usage if found else _REQUEST_USAGE


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


# --- errors --------------------------------------------------------------------


class CommandError(Exception):
    """A command that cannot be run as typed; ``str()`` is the whole ephemeral reply."""

    def __init__(self, message: str, usage: str) -> None:
        self.message = message
        self.usage = usage
        super().__init__(message, usage)

    def __str__(self) -> str:
        return f"{self.message} Usage: {_c(self.usage)}"


def _suggest(word: str, choices: Collection[str]) -> str | None:
    close = difflib.get_close_matches(word.lower(), [c.lower() for c in choices], n=1, cutoff=0.6)
    if not close:
        return None
    return next(c for c in choices if c.lower() == close[0])


def _did_you_mean(word: str, choices: Collection[str]) -> str:
    suggestion = _suggest(word, choices)
    return f" Did you mean {_c(suggestion)}?" if suggestion else ""


def _known(services: Collection[str]) -> str:
    if not services:
        return " No services are in the catalog."
    names = sorted(services)
    shown = ", ".join(f"{_c(n)}" for n in names[:10])
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return f" Known services: {shown}{more}."


def unknown_revision(service: str, spec: int | str, known: Sequence[int]) -> CommandError:
    """For the service layer: ``--to`` named no revision of ``service``."""
    listed = ", ".join(str(k) for k in known[:10]) or "none"
    return CommandError(
        f"{_c(str(spec))} is not a revision of {_c(service)}. Known revisions: {listed}. "
        f"See {_c(f'/rollback history {service}')}.",
        usage_of(""),
    )


def ambiguous_revision(service: str, spec: str, candidates: Sequence[int]) -> CommandError:
    """For the service layer: an image tag that more than one revision of ``service`` ran."""
    listed = ", ".join(str(c) for c in candidates)
    return CommandError(
        f"{_c(spec)} matches several revisions of {_c(service)} ({listed}). "
        f"Pick one by number, e.g. `--to {candidates[0] if candidates else 41}`.",
        usage_of(""),
    )


# --- tokenizing --------------------------------------------------------------

# Typographic quotes (\u201c \u201d \u201e \u2018 \u2019) that clients substitute.
_SMART = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'"})
# Some clients turn `--to` into an em or en dash; put the two hyphens back.
_DASH_OPTION = re.compile("(^|\\s)[\u2014\u2013](?=[A-Za-z])")


def _normalize(text: str) -> str:
    # Slack escapes these three in slash command text; the model holds plain text.
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = text.translate(_SMART)
    return _DASH_OPTION.sub(r"\1--", text).strip()


def _protect_apostrophes(text: str) -> str:
    """Escape an apostrophe inside an unquoted word (``it's``) so it is not a quote."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quote != "'":
            out.append(text[i : i + 2])
            i += 2
            continue
        if quote is None and ch == "'":
            before = text[i - 1] if i else " "
            after = text[i + 1] if i + 1 < len(text) else " "
            if before.isalnum() and after.isalnum():
                out.append("\\'")
                i += 1
                continue
            quote = ch
        elif quote is None and ch == '"':
            quote = ch
        elif ch == quote:
            quote = None
        out.append(ch)
        i += 1
    return "".join(out)


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(_protect_apostrophes(_normalize(text)))
    except ValueError:
        first = text.split()[0].lower() if text.split() else ""
        raise CommandError(
            "There is a quote without its closing partner.",
            usage_of(first) if first in VERB_NAMES else _REQUEST_USAGE,
        ) from None


# --- options -------------------------------------------------------------------

_REVISION_NUMBER = re.compile(r"#?([0-9]{1,9})")
_IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
_IMAGE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/:@]{0,254}")


def _parse_revision(value: str, usage: str) -> int | str:
    number = _REVISION_NUMBER.fullmatch(value)
    if number:
        if int(number.group(1)) == 0:
            raise CommandError("Revision numbers start at 1.", usage)
        return int(number.group(1))
    if _IMAGE_TAG.fullmatch(value) or (_IMAGE_REF.fullmatch(value) and re.search("[:@]", value)):
        return value
    raise CommandError(
        f"{_c(value)} is neither a revision number (like `41`) nor an image tag (like `v1.4.2`).",
        usage,
    )


def _parse_strategy(value: str, usage: str) -> Strategy:
    lowered = value.lower().replace("_", "-")
    for strategy in STRATEGIES:
        if lowered in (strategy, strategy.replace("-", "")):
            return strategy
    raise CommandError(
        f"Unknown strategy {_c(value)}.{_did_you_mean(value, STRATEGIES)} "
        "Choose instant, blue-green or gradual.",
        usage,
    )


def _split_options(
    tokens: Sequence[str], allowed: Collection[str], usage: str
) -> tuple[list[str], dict[str, str]]:
    """Positional tokens and ``--option value`` pairs; ``--reason`` takes every word up to
    the next option, so an unquoted reason still reads as one."""
    positional: list[str] = []
    options: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or token == "--":
            positional.append(token)
            i += 1
            continue
        name, eq, inline = token.partition("=")
        name = name.lower()
        if name not in allowed:
            raise CommandError(
                f"Unknown option {_c(name)}.{_did_you_mean(name, allowed)}",
                usage,
            )
        if name in options:
            raise CommandError(f"{_c(name)} is given twice.", usage)
        if eq:
            value_words = [inline]
            i += 1
        else:
            j = i + 1
            stop = len(tokens) if name == "--reason" else min(j + 1, len(tokens))
            while j < stop and tokens[j].lower().split("=")[0] not in allowed:
                j += 1
            value_words = list(tokens[i + 1 : j])
            i = j
        value = " ".join(value_words).strip()
        if not value:
            raise CommandError(f"{_c(name)} needs a value.", usage)
        options[name] = value
    return positional, options


# --- verbs ---------------------------------------------------------------------


def _service(token: str, services: Collection[str], usage: str) -> str:
    by_lower = {s.lower(): s for s in services}
    found = by_lower.get(token.lower())
    if found is not None:
        return found
    hint = _did_you_mean(token, services) or _known(services)
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
    positional, options = _split_options(args, allowed, usage)
    if not positional:
        raise CommandError(f"Which service?{_known(services)}", usage)
    service = _service(positional[0], services, usage)
    if len(positional) > 1:
        extra = " ".join(positional[1:])
        hint = "" if drill else ' A reason goes after `--reason "..."`.'
        raise CommandError(f"Unexpected {_c(extra)} after {_c(service)}.{hint}", usage)
    to = options.get("--to")
    strategy = options.get("--strategy")
    return RequestRollback(
        service=service,
        to_revision=_parse_revision(to, usage) if to is not None else None,
        strategy=_parse_strategy(strategy, usage) if strategy is not None else None,
        reason=options.get("--reason"),
        drill=drill,
    )


def _deny(args: Sequence[str]) -> Deny:
    rollback_id = _rollback_id("deny", args)
    rest = list(args[1:])
    if rest and rest[0].lower().partition("=")[0] == "--reason":
        _, options = _split_options(rest, ("--reason",), usage_of("deny"))
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
    hint = _did_you_mean(token, services) or _known(services)
    raise CommandError(f"{_c(token)} is neither a service nor an id.{hint}", usage_of("status"))


def _history(args: Sequence[str], services: Collection[str]) -> History:
    usage = usage_of("history")
    if not args:
        raise CommandError(f"`history` needs a service.{_known(services)}", usage)
    _no_more("history", args[1:])
    return History(_service(args[0], services, usage))


def _export(args: Sequence[str]) -> Export:
    usage = usage_of("export")
    positional, options = _split_options(args, ("--format",), usage)
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
        raise CommandError(f"`flag` needs a service and a flag name.{_known(services)}", usage)
    service = _service(args[0], services, usage)
    known = flags.get(service, ()) if flags is not None else None
    if len(args) < 2:
        listed = ", ".join(f"{_c(f)}" for f in sorted(known)) if known else ""
        hint = f" Flags of {_c(service)}: {listed}." if listed else ""
        raise CommandError(f"`flag` needs a flag name after {_c(service)}.{hint}", usage)
    _no_more("flag", args[2:])
    flag = args[1]
    if known is not None and flag not in known:
        hint = _did_you_mean(flag, known) or (
            f" Flags of {_c(service)}: {', '.join(f'{_c(f)}' for f in sorted(known))}."
            if known
            else f" {_c(service)} has no flags in the catalog."
        )
        raise CommandError(f"Unknown flag {_c(flag)} for {_c(service)}.{hint}", usage)
    return KillFlag(service, flag)


def _unknown(word: str, services: Collection[str]) -> CommandError:
    verbs = sorted(VERB_NAMES)
    verb = _suggest(word, verbs)
    service = _suggest(word, services)
    if service is not None and (
        verb is None
        or difflib.SequenceMatcher(None, word, service).ratio()
        >= difflib.SequenceMatcher(None, word, verb).ratio()
    ):
        return CommandError(
            f"Unknown service {_c(word)}. Did you mean {_c(service)}?", _REQUEST_USAGE
        )
    if verb is not None:
        return CommandError(f"Unknown command {_c(word)}. Did you mean {_c(verb)}?", usage_of(verb))
    return CommandError(
        f"{_c(word)} is neither a command nor a service.{_known(services)} "
        "See `/rollback help` for every command.",
        _REQUEST_USAGE,
    )


_ID_VERBS: dict[str, Callable[[int], Command]] = {
    "approve": Approve,
    "pause": Pause,
    "resume": Resume,
    "abort": Abort,
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
    tokens = _tokens(text)
    if not tokens:
        return Help()
    head, args = tokens[0], tokens[1:]
    verb = head.lower()
    if verb in ("help", "-h", "--help", "?"):
        return Help()
    if verb == _REQUEST_VERB:
        return _request(args, services, drill=False, verb=_REQUEST_VERB)
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
    if head.startswith("-"):
        raise CommandError(f"Which service?{_known(services)}", _REQUEST_USAGE)
    if head.lower() in {s.lower() for s in services}:
        return _request(tokens, services, drill=False, verb="")
    raise _unknown(head, services)
