"""What the runner says about a rollback, held back while its first write is on its way.

A decision that starts a rollback here (the last approval, a countdown that ran
out, "run now") is followed at once by its messages: the rollback's card, its
thread line, the incident's alert cards, then the same again for the move to
executing. Said while the executor snapshots and patches the Deployment, they
compete with it for the interpreter lock and the network, and the card they
draw is out of date a few milliseconds later anyway. So from the decision until
that job's first write, or until the job ends without one, the runner holds
what it would say about that rollback and then says all of it, in the order it
was said. Only a job this process starts at once is waited for: a job stored
for another replica is not, so nothing is held for it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from functools import partial

from rollback_bot.ids import format_rollback_id as rid
from rollback_bot.rollbacks.lifecycle import Decision
from rollback_bot.rollbacks.runner.ports import Notifier
from rollback_bot.storage.models import Rollback

log = logging.getLogger(__name__)


class HeldNotifier:
    """A ``Notifier`` whose words about a rollback can wait for its first write."""

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier
        self._lock = threading.Lock()
        self._held: dict[int, deque[Callable[[], None]]] = {}

    def hold(self, rollback_id: int) -> None:
        with self._lock:
            self._held.setdefault(rollback_id, deque())

    def release(self, rollback_id: int) -> None:
        """Say what was held, in order; what is said meanwhile queues behind it.

        Called by the job that was waited for, after its first write and again as it
        ends; the second call finds nothing held and returns.
        """
        while True:
            with self._lock:
                queue = self._held.get(rollback_id)
                if not queue:
                    self._held.pop(rollback_id, None)
                    return
                words = queue.popleft()
            try:
                words()
            except Exception:  # one message not drawn must not silence the others
                log.exception("could not tell Slack about %s", rid(rollback_id))

    # -- Notifier ------------------------------------------------------------------
    def rollback_changed(self, row: Rollback, decision: Decision | None = None) -> None:
        self.say(row.id, partial(self._notifier.rollback_changed, row, decision))

    def progress(self, row: Rollback, line: str) -> None:
        self.say(row.id, partial(self._notifier.progress, row, line))

    def finished(self, row: Rollback) -> None:
        self.say(row.id, partial(self._notifier.finished, row))

    def say(self, rollback_id: int, words: Callable[[], None]) -> None:
        """Say ``words`` now, or after what is held for the rollback (in its turn)."""
        with self._lock:
            queue = self._held.get(rollback_id)
            if queue is not None:
                queue.append(words)
                return
        words()
