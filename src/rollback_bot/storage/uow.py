"""The unit of work: the one place a transaction begins, commits or rolls back.

A state change and its timeline entry are written through the same unit of work, so they
land together or not at all::

    with make_uow() as uow:
        rollback = uow.rollbacks.get(id=7)
        rollback.state = "approved"
        uow.timeline.append(at=now, actor="U0BOB", kind="rollback.approved", ...)
        uow.commit()

Leaving the block without ``commit()`` (or through an exception) rolls back. Keep units of
work short and never hold one open across a network call: on SQLite a writing unit of work
holds the database write lock from its first statement until it ends.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from rollback_bot.storage.engine import read_only_engine, snapshot_engine
from rollback_bot.storage.repositories import (
    AlertGroupRepository,
    AlertRepository,
    ApprovalRepository,
    IdempotencyRepository,
    IncidentRepository,
    ReleaseVerdictRepository,
    RollbackRepository,
    SnapshotRepository,
    TimelineRepository,
    TriggerFiringRepository,
)
from rollback_bot.storage.repositories._base import concurrent_update_errors


class UnitOfWork:
    """One transaction and the repositories that share it. Use it as a context manager."""

    def __init__(self, session_factory: Callable[[], Session], *, read_only: bool = False) -> None:
        self._session_factory = session_factory
        self._read_only = read_only
        self._session: Session | None = None

    def __enter__(self) -> UnitOfWork:
        session = self._session_factory()
        self._session = session
        self.incidents = IncidentRepository(session)
        self.alert_groups = AlertGroupRepository(session)
        self.alerts = AlertRepository(session)
        self.rollbacks = RollbackRepository(session)
        self.approvals = ApprovalRepository(session)
        self.timeline = TimelineRepository(session)
        self.snapshots = SnapshotRepository(session)
        self.trigger_firings = TriggerFiringRepository(session)
        self.idempotency = IdempotencyRepository(session)
        self.verdicts = ReleaseVerdictRepository(session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            # A reader has nothing to discard; skipping the rollback keeps what it
            # loaded readable after the block (a rollback would expire it).
            if not self._read_only:
                session.rollback()  # no-op after commit(); discards anything uncommitted
        finally:
            session.close()
            self._session = None

    @property
    def session(self) -> Session:
        """The underlying SQLAlchemy session, for queries no repository offers yet."""
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its `with` block")
        return self._session

    def commit(self) -> None:
        """Commit; raises :class:`~rollback_bot.storage.errors.ConcurrentUpdate` if a row moved.

        On failure everything is rolled back. Objects stay readable after commit (their
        attributes are not expired), also after the ``with`` block ends.
        """
        session = self.session
        try:
            with concurrent_update_errors():
                session.commit()
        except BaseException:
            session.rollback()
            raise

    def flush(self) -> None:
        """Send pending changes now (assigning ids) without committing."""
        with concurrent_update_errors():
            self.session.flush()

    def rollback(self) -> None:
        self.session.rollback()


class UnitOfWorkFactory:
    """Makes units of work on one engine: ``factory()`` to write, ``read_only=True`` to read.

    A read-only unit of work never takes SQLite's write lock, so status pages and exports
    do not queue behind writers, and holds no transaction on a server. It must not write:
    SQLite refuses its commit while another writer is active, and on a server each of its
    statements commits by itself (``storage.engine.read_only_engine``).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: ``engine`` for reads: never SQLite's write lock, no transaction on a server.
        self.reader = read_only_engine(engine)
        self._writer = sessionmaker(bind=engine, expire_on_commit=False)
        # No autoflush for readers: an object a reader changed (for display, say) is never
        # sent, where a server's autocommit would otherwise keep it.
        self._reader = sessionmaker(bind=self.reader, expire_on_commit=False, autoflush=False)
        self._snapshot = sessionmaker(
            bind=snapshot_engine(engine), expire_on_commit=False, autoflush=False
        )

    def __call__(self, *, read_only: bool = False, snapshot: bool = False) -> UnitOfWork:
        """``snapshot=True``: a read-only unit of work whose statements all see one
        moment, and which may stream results (``storage.engine.snapshot_engine``)."""
        if snapshot:
            return UnitOfWork(self._snapshot, read_only=True)
        return UnitOfWork(self._reader if read_only else self._writer, read_only=read_only)


def uow_factory(engine: Engine) -> UnitOfWorkFactory:
    """A callable returning a fresh :class:`UnitOfWork` on ``engine`` each time it is called."""
    return UnitOfWorkFactory(engine)
