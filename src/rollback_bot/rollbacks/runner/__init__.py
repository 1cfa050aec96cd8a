"""The runner, split into deciding and acting.

- ``reactor``: what to do next for a rollback, from its stored row (pure).
- ``jobs``: the kinds of stored job and their ids.
- ``scheduling``: the job store in the database, bound to its runner.
- ``steps``: the execution jobs; ``recovery``: what a restart does.
- ``runner``: ``Runner``, where decisions and due jobs come in.
"""

from rollback_bot.rollbacks.runner.jobs import JobKind
from rollback_bot.rollbacks.runner.ports import Notifier, RollbackWriter
from rollback_bot.rollbacks.runner.runner import Runner

__all__ = ["JobKind", "Notifier", "RollbackWriter", "Runner"]
