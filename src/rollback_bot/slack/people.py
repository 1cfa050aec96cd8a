"""People by name: Slack user ids (``U0ALICE``) resolved with ``users.info``.

Used where a person reads a document (the postmortem). Names are remembered for the
process (a person's name rarely changes and the postmortem is not a security decision);
a failure is not remembered, so the next export asks again, and the id stands in for the
name meanwhile: a name that cannot be read never fails an export.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


class SlackPeople:
    """``names(user_id) -> name | None`` for ``rollback_bot.incidents.postmortem``."""

    def __init__(self, client: Any, *, maxsize: int = 4096) -> None:
        self._client = client
        self._names: dict[str, str] = {}
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def __call__(self, user_id: str) -> str | None:
        return self.name(user_id)

    def name(self, user_id: str) -> str | None:
        with self._lock:
            hit = self._names.get(user_id)
        if hit is not None:
            return hit
        try:
            resp = self._client.users_info(user=user_id)
        except (SlackApiError, OSError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
            log.warning("cannot read the name of %s: %s", user_id, error)
            return None
        user = resp.get("user") or {}
        profile = user.get("profile") or {}
        name = (
            profile.get("real_name")
            or user.get("real_name")
            or profile.get("display_name")
            or user.get("name")
        )
        if not name:
            return None
        with self._lock:
            if len(self._names) >= self._maxsize:
                self._names.clear()
            self._names[user_id] = str(name)
        return str(name)
