"""Who is in which Slack user group, asked of Slack and remembered briefly.

Policies name user groups (``S0SRE``); membership lives in Slack. Asking on
every click would add a Web API round trip to each decision, and Slack rate
limits ``usergroups.users.list``, so members are cached for a short TTL:
long enough for a burst of clicks, short enough that removing someone from
the on-call group takes effect within a minute.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from cachetools import TTLCache
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from rollback_bot.clock import Clock
from rollback_bot.rollbacks.policies import MembershipUnavailable

log = logging.getLogger(__name__)


class GroupDirectory:
    """Slack user groups as the ``rollback_bot.rollbacks.policies.Membership`` policies ask."""

    def __init__(self, client: WebClient, clock: Clock, *, ttl_seconds: float = 60) -> None:
        self._client = client
        # Expiry follows the injected clock, so tests that move time see entries expire.
        self._cache: TTLCache[str, frozenset[str]] = TTLCache(
            maxsize=1024, ttl=ttl_seconds, timer=lambda: clock.now().timestamp()
        )
        # cachetools caches are not thread-safe; clicks are handled on many threads.
        self._lock = threading.Lock()

    def members(self, group: str) -> frozenset[str]:
        """The group's members; ``SlackApiError`` when Slack cannot say (nothing is cached)."""
        with self._lock:
            hit = self._cache.get(group)
        if hit is not None:
            return hit
        resp = self._client.usergroups_users_list(usergroup=group)
        members: list[object] = resp.get("users", [])
        users = frozenset(str(u) for u in members)
        with self._lock:
            self._cache[group] = users
        return users

    def groups_of(self, user_id: str, candidates: Iterable[str]) -> frozenset[str]:
        """The subset of ``candidates`` that ``user_id`` belongs to.

        Fails closed and says why: a group Slack cannot read grants nothing, is
        not remembered (the next click asks again), and is reported in
        ``MembershipUnavailable`` so the refusal names the failure, not the person.
        """
        known: set[str] = set()
        failed: dict[str, str] = {}
        for group in sorted(set(candidates)):
            try:
                if user_id in self.members(group):
                    known.add(group)
            except (SlackApiError, OSError) as exc:
                error = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
                log.warning("cannot read user group %s: %s", group, error)
                failed[group] = str(error)
        if failed:
            raise MembershipUnavailable(frozenset(known), failed)
        return frozenset(known)
