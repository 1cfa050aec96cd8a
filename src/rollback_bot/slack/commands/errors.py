"""``CommandError`` and the hints it carries: did-you-mean, known services, revisions."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Sequence

from rollback_bot.slack.commands.verbs import usage_of
from rollback_bot.slack.ui.mrkdwn import code as _c


class CommandError(Exception):
    """A command that cannot be run as typed; ``str()`` is the whole ephemeral reply."""

    def __init__(self, message: str, usage: str) -> None:
        self.message = message
        self.usage = usage
        super().__init__(message, usage)

    def __str__(self) -> str:
        return f"{self.message} Usage: {_c(self.usage)}"


def suggest(word: str, choices: Collection[str]) -> str | None:
    close = difflib.get_close_matches(word.lower(), [c.lower() for c in choices], n=1, cutoff=0.6)
    if not close:
        return None
    return next(c for c in choices if c.lower() == close[0])


def did_you_mean(word: str, choices: Collection[str]) -> str:
    suggestion = suggest(word, choices)
    return f" Did you mean {_c(suggestion)}?" if suggestion else ""


def known_services(services: Collection[str]) -> str:
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
