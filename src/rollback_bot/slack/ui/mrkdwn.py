"""How the bot writes in Slack's mrkdwn: escaping, code spans, people, times, durations, diffs.

Text from alerts and from people is shown literally (escaped), except for user,
channel and group mentions, which must still notify. Every builder writes these
things the same way because they all come from here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from rollback_bot.slack.ui.limits import MAX_TEXT, clip
from rollback_bot.slack.ui.views import Change

# User and group mentions survive escaping; everything else from people is literal.
_MENTION = re.compile(r"(<(?:@[UW]|#C|!subteam\^)[A-Za-z0-9|._\-^ ]*>)")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


def escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` for mrkdwn, keeping user, channel and group mentions."""
    parts = _MENTION.split(text)
    return "".join(
        part if i % 2 else part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        for i, part in enumerate(parts)
    )


def code(text: str, limit: int = 200) -> str:
    """``text`` as an inline code span, cut to ``limit``."""
    # A backtick inside would end the code span early.
    inner = escape(clip(text.replace("`", "'"), limit))
    return f"`{inner}`"


def who(user: str) -> str:
    """A Slack user id as a mention; anything else (``automation``) as literal text."""
    return f"<@{user}>" if _USER_ID.fullmatch(user) else escape(user)


def link(url: str, label: str) -> str:
    """``<url|label>``, with the URL unable to break out of the markup."""
    safe = url.replace(" ", "%20").replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{safe}|{label}>"


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
