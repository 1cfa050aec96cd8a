"""Leader election on a ``coordination.k8s.io/v1`` Lease, as Kubernetes controllers do it.

The rules are client-go's ``leaderelection``: the Lease names its holder
(``holderIdentity``), how long a holder may go without renewing
(``leaseDurationSeconds``), when it took the lease (``acquireTime``), when it last
renewed (``renewTime``) and how often the lease changed hands
(``leaseTransitions``). A candidate takes a lease only after it has watched the
same record, unchanged, for a whole lease duration on its *own* clock (so clocks
of different machines are never compared); every write carries the
``resourceVersion`` it read, so two candidates racing for an expired lease cannot
both win: the API server answers the slower one 409. A leader that has not renewed
for ``renew_deadline`` (shorter than the lease duration) stops leading at once,
before anybody else may take over.

``decide`` is the pure part (what to write, given what was read); ``LeaseElector``
reads, writes and keeps time through an injected clock. The official client's
``kubernetes.leaderelection`` was not used: its config refuses periods under a
second, it leaves the lease's ``leaseTransitions`` alone, runs one election and
returns, has no way to stop, and logs a 403 as an ordinary failed attempt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from rollback_bot.clock import Clock
from rollback_bot.kube.client import read_json, refusal, status_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ElectionSettings:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError(
                "leader election needs LEADER_ELECTION_LEASE_DURATION > "
                "LEADER_ELECTION_RENEW_DEADLINE > LEADER_ELECTION_RETRY_PERIOD > 0 "
                f"(got {self.lease_duration:g} / {self.renew_deadline:g} / "
                f"{self.retry_period:g} s)"
            )
        if not self.identity:
            raise ValueError("leader election needs an identity (POD_NAME or hostname-pid)")


@dataclass(frozen=True)
class LeaseRecord:
    """The spec of a Lease, plus the ``resourceVersion`` it was read at."""

    holder: str
    duration_seconds: int
    acquire_time: datetime | None
    renew_time: datetime | None
    transitions: int
    resource_version: str | None = None


@dataclass(frozen=True)
class Observation:
    """The record a candidate last saw and when, on its own clock."""

    record: LeaseRecord
    seen_at: datetime


@dataclass(frozen=True)
class Attempt:
    """What ``decide`` says: write ``record`` (create when ``create``), or wait (None)."""

    record: LeaseRecord | None
    create: bool = False
    reason: str = ""


def lease_seconds(settings: ElectionSettings) -> int:
    """The duration written into the Lease (the API field is whole seconds)."""
    return max(1, round(settings.lease_duration))


def decide(
    current: LeaseRecord | None,
    *,
    observed: Observation | None,
    now: datetime,
    settings: ElectionSettings,
) -> Attempt:
    """What a candidate writes after reading ``current`` (None: there is no Lease yet).

    ``observed`` is the record this candidate saw before and when; a lease held by
    someone else is only taken once the same record has been seen unchanged for its
    whole duration, counted on this candidate's clock.
    """
    me = settings.identity
    duration = lease_seconds(settings)
    if current is None:
        fresh = LeaseRecord(me, duration, now, now, 0)
        return Attempt(fresh, create=True, reason="no lease yet")
    if current.holder == me:
        return Attempt(replace(current, duration_seconds=duration, renew_time=now), reason="renew")
    taken = LeaseRecord(me, duration, now, now, current.transitions + 1, current.resource_version)
    if not current.holder:
        return Attempt(taken, reason="released")
    if observed is None or _spec(observed.record) != _spec(current):
        return Attempt(None, reason=f"held by {current.holder}; watching it")
    held_for = timedelta(seconds=max(current.duration_seconds, 1))
    if now < observed.seen_at + held_for:
        return Attempt(None, reason=f"held by {current.holder}")
    return Attempt(taken, reason=f"{current.holder} stopped renewing")


def _spec(record: LeaseRecord) -> tuple[object, ...]:
    return (
        record.holder,
        record.duration_seconds,
        record.acquire_time,
        record.renew_time,
        record.transitions,
    )


def _micro(value: datetime | None) -> str | None:
    # MicroTime on the wire: RFC 3339 with exactly six fractional digits.
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def to_body(settings: ElectionSettings, record: LeaseRecord) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": settings.name, "namespace": settings.namespace}
    if record.resource_version:
        metadata["resourceVersion"] = record.resource_version
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": record.holder,
            "leaseDurationSeconds": record.duration_seconds,
            "acquireTime": _micro(record.acquire_time),
            "renewTime": _micro(record.renew_time),
            "leaseTransitions": record.transitions,
        },
    }


def from_body(body: dict[str, Any]) -> LeaseRecord:
    spec = body.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=_parse(spec.get("acquireTime")),
        renew_time=_parse(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=(body.get("metadata") or {}).get("resourceVersion"),
    )


class LeaseRefused(Exception):
    """Kubernetes refused the bot access to its Lease (RBAC); the message says which rule."""


class LeaseElector:
    """Campaigns for the Lease and keeps it; tells ``on_started``/``on_stopped`` the changes.

    ``tick`` is one round (tests call it with a fake clock); ``start`` runs rounds every
    retry period on a thread until ``stop``, which gives the lease up if held, so that
    the next replica need not wait out the lease duration.
    """

    def __init__(
        self,
        *,
        api_client: k8s.ApiClient,
        settings: ElectionSettings,
        clock: Clock,
        on_started: Callable[[], None],
        on_stopped: Callable[[], None],
    ) -> None:
        self.settings = settings
        self._client = api_client
        self._clock = clock
        self._on_started = on_started
        self._on_stopped = on_stopped
        self._observed: Observation | None = None
        self._renewed_at: datetime | None = None  # our last successful write, while leading
        self._leading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self._lock = threading.Lock()  # one round at a time: the thread, stop, tests
        self._state = threading.RLock()  # leading and renewed_at, shared with the watchdog
        self.last_error: str | None = None

    @property
    def leading(self) -> bool:
        return self._leading

    # -- one round --------------------------------------------------------------------
    def tick(self) -> bool:
        """Try to acquire or renew once; step down past the renew deadline. Leading after?"""
        with self._lock:
            started = self._clock.now()
            try:
                won = self._try_acquire_or_renew()
                self.last_error = None
            except LeaseRefused as exc:
                self.last_error = str(exc)
                log.error("%s", exc)
                won = False
            except Exception as exc:  # the API server may be away for a while
                self.last_error = f"leader election round failed: {exc!r}"
                log.warning("%s", self.last_error)
                won = False
            with self._state:
                if won:
                    # The deadline counts from when the round began, not when it ended.
                    self._renewed_at = started
                    if not self._leading:
                        self._leading = True
                        log.info("%s is now the leader", self.settings.identity)
                        self._on_started()
                elif self._leading and self._past_deadline(self._clock.now()):
                    self._step_down("could not renew the lease within the renew deadline")
            return self._leading

    def check_deadline(self) -> None:
        """Step down if the last renewal is older than the renew deadline (the watchdog).

        Runs on its own thread in ``start``: a round stuck on a slow API server must
        not keep a leader that can no longer renew.
        """
        with self._state:
            if self._leading and self._past_deadline(self._clock.now()):
                self._step_down("the last renewal is older than the renew deadline")

    def _past_deadline(self, now: datetime) -> bool:
        last = self._renewed_at
        return last is None or now - last >= timedelta(seconds=self.settings.renew_deadline)

    def _step_down(self, why: str) -> None:
        if not self._leading:
            return
        self._leading = False
        self._renewed_at = None
        log.warning("%s stopped leading: %s", self.settings.identity, why)
        self._on_stopped()

    def _try_acquire_or_renew(self) -> bool:
        current = self._read()
        now = self._clock.now()
        if current is not None and (
            self._observed is None or _spec(self._observed.record) != _spec(current)
        ):
            self._observed = Observation(current, now)
        attempt = decide(current, observed=self._observed, now=now, settings=self.settings)
        if attempt.record is None:
            return False
        written = self._write(attempt.record, create=attempt.create)
        if written is None:
            return False  # someone else wrote first (409): read again next round
        self._observed = Observation(written, now)
        return True

    # -- the API ----------------------------------------------------------------------
    def _timeout(self) -> float:
        return max(0.5, min(self.settings.retry_period * 2, self.settings.renew_deadline / 2))

    def _what(self, verb: str) -> str:
        return f"{verb} of Lease {self.settings.namespace}/{self.settings.name} (leader election)"

    def _path(self, *, named: bool = True) -> str:
        base = f"/apis/coordination.k8s.io/v1/namespaces/{self.settings.namespace}/leases"
        return f"{base}/{self.settings.name}" if named else base

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request with the client's credentials, the body sent exactly as built.

        (The typed methods re-serialise MicroTime through ``datetime.isoformat``, which
        drops a zero microsecond part, and the API server refuses that spelling.)
        """
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        method, url, headers, data, post = self._client.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        response = self._client.call_api(
            method, url, headers, data, post, _request_timeout=self._timeout()
        )
        response.read()  # type: ignore[no-untyped-call]
        if not 200 <= int(response.status) < 300:
            raise ApiException(http_resp=response)
        return response

    def _read(self) -> LeaseRecord | None:
        try:
            resp = self._call("GET", self._path())
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._explain(exc, "get") from None
        return from_body(read_json(resp))

    def _write(self, record: LeaseRecord, *, create: bool) -> LeaseRecord | None:
        body = to_body(self.settings, record)
        try:
            if create:
                resp = self._call("POST", self._path(named=False), body)
            else:
                resp = self._call("PUT", self._path(), body)
        except ApiException as exc:
            if exc.status == 409:
                return None
            raise self._explain(exc, "create" if create else "update") from None
        return from_body(read_json(resp))

    def _explain(self, exc: ApiException, verb: str) -> Exception:
        if exc.status == 403:
            return LeaseRefused(refusal(status_message(exc), self._what(verb)))
        detail = status_message(exc) or exc.reason
        return RuntimeError(f"{self._what(verb)} failed (HTTP {exc.status}): {detail}")

    # -- the loop ---------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="leader-election", daemon=True)
        self._watchdog = threading.Thread(
            target=self._watch, name="leader-election-deadline", daemon=True
        )
        self._thread.start()
        self._watchdog.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.settings.retry_period)

    def _watch(self) -> None:
        while not self._stop.wait(min(0.05, self.settings.retry_period / 4)):
            self.check_deadline()

    def stop(self) -> None:
        """End the campaign; a leader gives the lease up so a follower takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.renew_deadline + 1)
            self._thread = None
        if self._watchdog is not None:
            self._watchdog.join(timeout=1)
            self._watchdog = None
        with self._lock, self._state:
            if self._leading:
                self._step_down("shutting down")  # stop scheduling first, then let go
                self._release()

    def _release(self) -> None:
        observed = self._observed
        if observed is None:
            return
        now = self._clock.now()
        released = replace(observed.record, holder="", duration_seconds=1, renew_time=now)
        try:
            self._write(released, create=False)
        except Exception as exc:
            log.warning("giving up the lease failed (%r); it expires on its own", exc)
