"""Leader election on a Lease: the pure decision, then two electors on the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client

from rollback_bot.clock import FakeClock
from rollback_bot.kube.lease import (
    Attempt,
    ElectionSettings,
    LeaseElector,
    LeaseRecord,
    Observation,
    decide,
)
from sandbox.kube import KubeEmulator

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _settings(identity: str = "a") -> ElectionSettings:
    return ElectionSettings(
        namespace="default",
        name="rollback-bot",
        identity=identity,
        lease_duration=3,
        renew_deadline=2,
        retry_period=0.5,
    )


def _held_by(holder: str, *, at: datetime = T0, transitions: int = 0) -> LeaseRecord:
    return LeaseRecord(holder, 3, at, at, transitions, "7")


# -- the pure decision -------------------------------------------------------------------
def test_no_lease_is_created_with_this_candidate_as_holder() -> None:
    attempt = decide(None, observed=None, now=T0, settings=_settings())
    assert attempt.create
    assert attempt.record == LeaseRecord("a", 3, T0, T0, 0)


def test_the_holder_renews_keeping_acquire_time_and_transitions() -> None:
    current = _held_by("a", transitions=4)
    later = T0 + timedelta(seconds=1)
    attempt = decide(current, observed=Observation(current, T0), now=later, settings=_settings())
    assert attempt.record == LeaseRecord("a", 3, T0, later, 4, "7")
    assert not attempt.create


def test_a_live_lease_of_someone_else_is_left_alone() -> None:
    current = _held_by("b")
    seen = Observation(current, T0)
    for seconds in (0, 1, 2.9):
        now = T0 + timedelta(seconds=seconds)
        assert decide(current, observed=seen, now=now, settings=_settings()).record is None


def test_a_lease_first_seen_now_is_watched_for_a_whole_duration_before_taking_it() -> None:
    # renewTime long ago by the lease's own clock, but clocks of two machines are never
    # compared: only what this candidate saw, and for how long, counts.
    current = _held_by("b", at=T0 - timedelta(hours=1))
    assert decide(current, observed=None, now=T0, settings=_settings()).record is None


def test_an_expired_lease_is_taken_with_one_more_transition_at_its_resource_version() -> None:
    current = _held_by("b", transitions=2)
    now = T0 + timedelta(seconds=3)
    attempt = decide(current, observed=Observation(current, T0), now=now, settings=_settings())
    assert attempt == Attempt(LeaseRecord("a", 3, now, now, 3, "7"), reason="b stopped renewing")


def test_a_renewal_seen_restarts_the_wait() -> None:
    before = _held_by("b")
    renewed = _held_by("b", at=T0 + timedelta(seconds=2))
    now = T0 + timedelta(seconds=4)
    assert decide(renewed, observed=Observation(before, T0), now=now, settings=_settings()) == (
        Attempt(None, reason="held by b; watching it")
    )


def test_a_released_lease_is_taken_at_once() -> None:
    current = _held_by("")
    attempt = decide(current, observed=None, now=T0, settings=_settings())
    assert attempt.record is not None and attempt.record.holder == "a"
    assert attempt.record.transitions == 1


def test_settings_must_order_duration_deadline_and_period() -> None:
    with pytest.raises(ValueError, match=r"LEASE_DURATION > .*RENEW_DEADLINE > .*RETRY_PERIOD"):
        ElectionSettings(namespace="d", name="n", identity="a", lease_duration=2, renew_deadline=2)


# -- two electors on the emulator ------------------------------------------------------------
class Events:
    def __init__(self) -> None:
        self.seen: list[str] = []


@pytest.fixture
def emulator() -> Iterator[KubeEmulator]:
    with KubeEmulator(ready_delay=0.05) as emu:
        yield emu


def _elector(emu: KubeEmulator, identity: str, clock: FakeClock, events: Events) -> LeaseElector:
    return LeaseElector(
        api_client=emu.api_client(),
        settings=_settings(identity),
        clock=clock,
        on_started=lambda: events.seen.append(f"{identity} leads"),
        on_stopped=lambda: events.seen.append(f"{identity} follows"),
    )


def _lease(emu: KubeEmulator) -> client.V1Lease:
    api = client.CoordinationV1Api(emu.api_client())
    lease: client.V1Lease = api.read_namespaced_lease("rollback-bot", "default")
    return lease


def test_one_leader_then_the_other_after_the_first_stops_renewing(emulator: KubeEmulator) -> None:
    clock, events = FakeClock(T0), Events()
    a = _elector(emulator, "a", clock, events)
    b = _elector(emulator, "b", clock, events)
    assert a.tick() and not b.tick()
    lease = _lease(emulator)
    assert lease.spec.holder_identity == "a"
    assert lease.spec.lease_duration_seconds == 3
    assert lease.spec.lease_transitions == 0

    clock.advance(1)
    assert a.tick() and not b.tick()  # renewed: b restarts its wait
    renewed = _lease(emulator)
    assert renewed.spec.renew_time > lease.spec.renew_time
    assert renewed.spec.acquire_time == lease.spec.acquire_time

    clock.advance(2.5)  # a stopped renewing 2.5 s ago: past its deadline, not yet expired
    a.check_deadline()
    assert not a.leading
    assert not b.tick()
    clock.advance(0.5)  # b has now seen the same record for the whole lease duration
    assert b.tick()
    taken = _lease(emulator)
    assert taken.spec.holder_identity == "b"
    assert taken.spec.lease_transitions == 1
    assert events.seen == ["a leads", "a follows", "b leads"]


def test_a_stale_write_is_refused_by_resource_version(emulator: KubeEmulator) -> None:
    clock, events = FakeClock(T0), Events()
    a = _elector(emulator, "a", clock, events)
    assert a.tick()
    api = client.CoordinationV1Api(emulator.api_client())
    stale = api.read_namespaced_lease("rollback-bot", "default")
    clock.advance(0.5)
    assert a.tick()  # renewed: the copy above is now one version behind
    stale.spec.holder_identity = "intruder"
    with pytest.raises(client.ApiException) as refused:
        api.replace_namespaced_lease("rollback-bot", "default", stale)
    assert refused.value.status == 409
    assert _lease(emulator).spec.holder_identity == "a"


def test_stop_gives_the_lease_up_so_the_next_one_need_not_wait(emulator: KubeEmulator) -> None:
    clock, events = FakeClock(T0), Events()
    a = _elector(emulator, "a", clock, events)
    b = _elector(emulator, "b", clock, events)
    assert a.tick()
    a.stop()
    assert events.seen == ["a leads", "a follows"]
    assert _lease(emulator).spec.holder_identity == ""
    assert b.tick()
    assert events.seen[-1] == "b leads"
