"""Kill switch use cases: turn a flag off, and undo that with one click."""

from __future__ import annotations

from rollback_bot.ids import format_rollback_id
from rollback_bot.rollbacks.model import Reply, RequestSpec
from rollback_bot.rollbacks.service import RollbackService
from rollback_bot.storage.uow import UnitOfWorkFactory


class FlagService:
    def __init__(self, *, rollbacks: RollbackService, uow: UnitOfWorkFactory) -> None:
        self._rollbacks = rollbacks
        self._uow = uow

    def kill(self, service: str, flag: str, *, user: str) -> Reply:
        spec = RequestSpec(
            service=service,
            user=user,
            strategy="flag",
            flag=flag,
            reason=f"kill switch: {flag} off",
        )
        # Posted where the service's alerts go, like any request without a thread.
        return self._rollbacks.request(spec, channel=None)

    def undo(self, rollback_id: int, *, user: str) -> Reply:
        with self._uow(read_only=True) as uow:
            row = uow.rollbacks.get(id=rollback_id)
        if row is None or row.strategy != "flag":
            return Reply.refused(f"{format_rollback_id(rollback_id)} is not a flag change.")
        detail = (row.plan or {}).get("detail", {})
        spec = RequestSpec(
            service=row.service,
            user=user,
            strategy="flag",
            flag=detail.get("flag"),
            flag_restore=detail.get("old"),
            reason=f"undo of {format_rollback_id(rollback_id)}",
        )
        return self._rollbacks.request(spec, channel=row.channel)
