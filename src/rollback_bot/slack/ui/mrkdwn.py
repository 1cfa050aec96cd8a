"""How the bot writes in Slack's mrkdwn: escaping, code spans, people, times, durations, diffs.

Text from alerts and from people is shown literally (escaped), except for user,
channel and group mentions, which must still notify. Every builder writes these
things the same way because they all come from here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from rollback_bot.redaction import redact_text
from rollback_bot.slack.ui.limits import MAX_TEXT, clip
from rollback_bot.slack.ui.views import Change

# Characters that are never shown: C0/C1 controls (not tab and newline), DEL, and lone
# surrogates (not encodable as UTF-8; Slack refuses the whole payload).
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# Bidirectional overrides and isolates reorder what a reader sees (``safe\u202etxt.exe``
# reads as ``safeexe.txt``): shown as their code point instead.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
# What a URL may look like to become a link: http(s), a host, no spaces, no angle
# brackets (they would end Slack's ``<url|label>`` markup); a ``|`` is percent-encoded.
_URL = re.compile(r"https?://[^\s<>\x00-\x1f\x7f\\\"`]+", re.IGNORECASE)
_URL_MAX = 2000


def clean(text: str) -> str:
    """``text`` without control characters, with bidi controls made visible (``[U+202E]``).

    For plain_text objects and as the first step of ``escape``: nothing in it is markup.
    """
    text = _INVISIBLE.sub("", text)
    return _BIDI.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def escape(text: str, limit: int | None = None) -> str:
    """Outside text (alerts, people, the cluster) as literal mrkdwn: THE one way it enters.

    Control characters are removed, bidi controls made visible, secret-looking
    values (``rollback_bot.redaction``) replaced by ``[redacted]``, ``&``, ``<`` and
    ``>`` escaped as Slack documents, so nothing in ``text`` can mention, link or
    page anyone (``<!channel>``, ``<@U1>``, ``<https://x|y>`` all show as typed).
    With ``limit`` the escaped result is cut to it with a visible "…", never in
    the middle of an entity.
    """
    out = redact_text(clean(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return out if limit is None else clip_escaped(out, limit)


def clip_escaped(text: str, limit: int) -> str:
    """``clip`` for escaped text: an ``&lt;`` is never cut into ``&l…``."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    amp = cut.rfind("&", max(len(cut) - 5, 0))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def safe_url(url: object) -> str | None:
    """``url`` when it may become a link (http or https, no spaces or markup), else None."""
    if not isinstance(url, str) or len(url) > _URL_MAX or not _URL.fullmatch(url):
        return None
    host = url.split("://", 1)[1].split("/", 1)[0]
    return url if host and not host.startswith(("@", ":", "?", "#")) else None


def code(text: str, limit: int = 200) -> str:
    """``text`` as an inline code span, cut to ``limit``."""
    # A backtick inside would end the code span early.
    inner = escape(clip(text.replace("`", "'"), limit))
    return f"`{inner}`"


def who(user: str) -> str:
    """A Slack user id as a mention; anything else (``automation``) as literal text."""
    return f"<@{user}>" if _USER_ID.fullmatch(user) else escape(user)


def group(group_id: str) -> str:
    """A Slack user group id as a group mention; anything else as literal text."""
    return f"<!subteam^{group_id}>" if _GROUP_ID.fullmatch(group_id) else escape(group_id)


def link(url: str | None, label: str) -> str:
    """``<url|label>`` for a URL ``safe_url`` accepts; otherwise the label alone, as text.

    The label is escaped; an unusable URL is never shown as a link, so an alert
    cannot disguise one ("click me") or point a "Runbook" anywhere but http(s).
    """
    safe = safe_url(url)
    shown = escape(clip(label, 100)).replace("|", "¦")
    if safe is None:
        return f"{shown} (not a valid link)"
    return f"<{safe.replace('&', '&amp;').replace('|', '%7C')}|{shown}>"


def format_duration(span: timedelta | float) -> str:
    """``45 s``, ``3m 12s``, ``2h 5m``, ``4d 3h``: short enough for one line."""
    seconds = int(span.total_seconds() if isinstance(span, timedelta) else span)
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, mins = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {mins}m"
    days, hrs = divmod(hours, 24)
    return f"{days}d {hrs}h"


def when(moment: datetime) -> str:
    """A timestamp each reader sees in their own time zone."""
    fallback = moment.strftime("%Y-%m-%d %H:%M:%S UTC" if moment.tzinfo else "%Y-%m-%d %H:%M:%S")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def revision(number: int | None, image: str | None) -> str:
    """``revision 41 `registry/checkout:v1.4.2```, or as much of it as is known."""
    if number is None and image is None:
        return "unknown"
    head = f"revision {number}" if number is not None else "revision ?"
    return f"{head} {code(image)}" if image else head


def bounded_lines(lines: Sequence[str], limit: int = MAX_TEXT, header: str = "") -> str:
    """Join ``lines`` under ``header`` within ``limit``, ending in "…and N more" if cut."""
    out = [header] if header else []
    for i, line in enumerate(lines):
        rest = len(lines) - i - 1
        tail = [f"…and {rest} more"] if rest else []
        # Each accepted line leaves room for the "…and N more" that may follow it.
        if len("\n".join([*out, line, *tail])) > limit:
            return "\n".join([*out, f"…and {len(lines) - i} more"])
        out.append(line)
    return "\n".join(out)


def change_line(change: Change) -> str:
    """One difference between two revisions as one bullet."""
    if change.before is None and change.after is None:
        # A change described in words only (e.g. "Service selector slot: blue -> green").
        return f"• {escape(clip(change.what, 500))}"
    what = f"*{escape(clip(change.what, 200))}*"
    if change.before is None and change.after is not None:
        return f"• {what}: added {code(change.after)}"
    if change.after is None and change.before is not None:
        return f"• {what}: removed (was {code(change.before)})"
    return f"• {what}: {code(change.before or '')} → {code(change.after or '')}"


def changes_section_text(changes: Sequence[Change]) -> str:
    """The "What changes" list, bounded to one section."""
    return bounded_lines([change_line(c) for c in changes], header="*What changes*")


def warnings_text(warnings: Sequence[str]) -> str:
    """Warnings, one ⚠️ line each, bounded to one section."""
    return bounded_lines([f"⚠️ {escape(clip(w, 500))}" for w in warnings])
