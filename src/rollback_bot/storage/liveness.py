"""Is a pooled server connection still alive when it is checked out? Asked without a query.

SQLAlchemy's ``pool_pre_ping`` sends a statement at every checkout: on the alert path,
where a unit of work is only a few statements, that was one round trip in eight. A server
that ends a connection (a restart, ``pg_terminate_backend``, an idle timeout) says so on
the socket: an error message, then end of file. A connection idle in the pool has nothing
to read otherwise, so a readable socket at checkout means it is gone, and a zero-timeout
poll costs no round trip. A connection dropped silently on the way (a NAT or firewall
forgetting it) shows nothing on the socket; one idle for ``ping_after`` seconds or more is
therefore pinged for real, as ``pool_pre_ping`` would.

What is not caught: a connection dropped silently within ``ping_after`` of its last use.
Its next statement fails, that one request errs, and SQLAlchemy invalidates the pool, as it
does for any disconnect found mid-statement.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

#: Seconds in the pool after which a connection is pinged at checkout, not only polled.
PING_AFTER_IDLE_S = 30.0

_RETURNED_AT = "rollback_bot_returned_at"


def check_at_checkout(
    engine: Engine,
    *,
    ping_after: float = PING_AFTER_IDLE_S,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Replace a dead connection at checkout: the pool then hands out a fresh one."""

    def returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = clock()

    driver_error = engine.dialect.loaded_dbapi.Error

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if _socket_readable(dbapi_connection, driver_error):
            raise DisconnectionError("the server closed the connection while it was pooled")
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is not None and clock() - returned_at >= ping_after:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except driver_error as exc:
                raise DisconnectionError(f"a pooled connection failed its ping: {exc}") from exc

    event.listen(engine, "checkin", returned)
    event.listen(engine, "checkout", checkout)


def _socket_readable(dbapi_connection: Any, driver_error: type[Exception]) -> bool:
    """True if the driver's socket has data or end of file waiting, or is already closed."""
    try:
        fd = dbapi_connection.fileno()
    except (OSError, driver_error):  # a closed driver connection has no socket: gone
        return True
    if hasattr(select, "poll"):  # no FD_SETSIZE limit, unlike select()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)
