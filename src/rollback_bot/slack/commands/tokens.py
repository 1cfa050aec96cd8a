"""From the raw text to tokens and ``--option value`` pairs, and the option values.

Slack clients rewrite what people type (smart quotes, ``—to`` for ``--to``, HTML
escapes); this undoes that before ``shlex`` splits, so the grammar sees what was meant.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Sequence

from rollback_bot.slack.commands.errors import CommandError, did_you_mean
from rollback_bot.slack.commands.model import STRATEGIES, Strategy
from rollback_bot.slack.commands.verbs import REQUEST_USAGE, VERB_NAMES, usage_of
from rollback_bot.slack.ui.mrkdwn import code as _c

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


def free_text(text: str, words: int) -> list[str]:
    """The first ``words`` words and then the rest as typed (for a note: quotes and all)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split(None, words)


def tokens_of(text: str) -> list[str]:
    try:
        return shlex.split(_protect_apostrophes(_normalize(text)))
    except ValueError:
        first = text.split()[0].lower() if text.split() else ""
        raise CommandError(
            "There is a quote without its closing partner.",
            usage_of(first) if first in VERB_NAMES else REQUEST_USAGE,
        ) from None


# --- options -------------------------------------------------------------------

REVISION_NUMBER = re.compile(r"#?([0-9]{1,9})")
_IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
_IMAGE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/:@]{0,254}")


def parse_revision(value: str, usage: str) -> int | str:
    number = REVISION_NUMBER.fullmatch(value)
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


def parse_strategy(value: str, usage: str) -> Strategy:
    lowered = value.lower().replace("_", "-")
    for strategy in STRATEGIES:
        if lowered in (strategy, strategy.replace("-", "")):
            return strategy
    raise CommandError(
        f"Unknown strategy {_c(value)}.{did_you_mean(value, STRATEGIES)} "
        "Choose instant, blue-green or gradual.",
        usage,
    )


def split_options(
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
                f"Unknown option {_c(name)}.{did_you_mean(name, allowed)}",
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
