"""The feature-flag kill switch over the Kubernetes emulator: plain and flagd flags are
flipped off and back, conflicts are retried, drills change nothing, and refusals say
what to fix."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from rollback_bot.catalog import Service
from rollback_bot.executors.bluegreen import WRITE_ATTEMPTS
from rollback_bot.executors.flag import FlagSwitch
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.model import Actor, ExecutionError
from tests.executors.conftest import create
from tests.support.backend import Backend, Scoped

ALICE = Actor(slack_user="U0ALICE")
EDIT_CONFIGMAPS = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]}
FLAGD = {
    "$schema": "https://flagd.dev/schema/v0/flags.json",
    "flags": {
        "new-checkout": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
        },
        "dark-mode": {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"},
    },
}


@pytest.fixture
def flags(kube_backend: Backend, ns: str) -> Scoped:
    """The namespace with ConfigMap checkout-flags (a plain key and a flagd document)."""
    create(
        kube_backend.apis,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "checkout-flags"},
            "data": {
                "PAYMENTS_V2": "true",
                "flags.json": json.dumps(FLAGD, indent=2) + "\n",
            },
        },
        ns,
    )
    return Scoped(kube_backend, ns)


def _service(ns: str, *flags: dict[str, Any]) -> Service:
    return Service.model_validate(
        {
            "name": "checkout",
            "namespace": ns,
            "deployment": "checkout",
            "channel": "C0ALERTS",
            "match": {"service": "checkout"},
            "flags": list(flags),
        }
    )


PLAIN = {"name": "payments-v2", "configmap": "checkout-flags", "key": "PAYMENTS_V2"}
FLAGD_FLAG = {
    "name": "new-checkout",
    "configmap": "checkout-flags",
    "key": "flags.json",
    "format": "flagd",
    "off": "off",
}


def _data(flags: Scoped) -> dict[str, str]:
    cm = flags.get("configmaps", "checkout-flags") or {}
    return dict(cm["data"])


def test_plain_flag_flips_off_and_back(flags: Scoped, apis: KubeApis) -> None:
    service = _service(flags.ns, PLAIN)
    switch = FlagSwitch(apis)

    flipped = switch.flip(service, "payments-v2", actor=ALICE, drill=False)

    assert (flipped.old, flipped.new) == ("true", "false")
    assert flipped.change is not None and flipped.change.kind == "ConfigMap"
    assert _data(flags)["PAYMENTS_V2"] == "false"
    assert switch.current(service, "payments-v2") == "false"

    undone = switch.undo(service, "payments-v2", flipped.old, actor=ALICE, drill=False)

    assert (undone.old, undone.new) == ("false", "true")
    assert _data(flags)["PAYMENTS_V2"] == "true"


def test_flipping_an_already_off_flag_changes_nothing(flags: Scoped, apis: KubeApis) -> None:
    service = _service(flags.ns, PLAIN)
    switch = FlagSwitch(apis)
    switch.flip(service, "payments-v2", actor=ALICE, drill=False)
    writes = len(flags.audit)

    again = switch.flip(service, "payments-v2", actor=ALICE, drill=False)

    assert again.change is None and again.old == "false"
    assert len(flags.audit) == writes


def test_undo_of_a_key_that_did_not_exist_removes_it(flags: Scoped, apis: KubeApis) -> None:
    service = _service(flags.ns, {**PLAIN, "key": "NEW_SEARCH", "name": "search"})
    switch = FlagSwitch(apis)

    flipped = switch.flip(service, "search", actor=ALICE, drill=False)
    assert flipped.old is None and _data(flags)["NEW_SEARCH"] == "false"

    switch.undo(service, "search", flipped.old, actor=ALICE, drill=False)

    assert "NEW_SEARCH" not in _data(flags)
    assert _data(flags)["PAYMENTS_V2"] == "true"


def test_flagd_flag_sets_the_default_variant_and_restores_it(flags: Scoped, apis: KubeApis) -> None:
    service = _service(flags.ns, FLAGD_FLAG)
    switch = FlagSwitch(apis)

    flipped = switch.flip(service, "new-checkout", actor=ALICE, drill=False)

    assert (flipped.old, flipped.new) == ("on", "off")
    document = json.loads(_data(flags)["flags.json"])
    assert document["flags"]["new-checkout"]["defaultVariant"] == "off"
    assert document["flags"]["dark-mode"] == FLAGD["flags"]["dark-mode"]  # type: ignore[index]

    switch.undo(service, "new-checkout", flipped.old, actor=ALICE, drill=False)

    assert _data(flags)["flags.json"] == json.dumps(FLAGD, indent=2) + "\n"


def test_flagd_refuses_a_variant_the_flag_does_not_have(flags: Scoped, apis: KubeApis) -> None:
    service = _service(flags.ns, {**FLAGD_FLAG, "name": "dark-mode"})
    before = flags.dump()

    with pytest.raises(ExecutionError) as refused:
        FlagSwitch(apis).flip(service, "dark-mode", actor=ALICE, drill=False)

    assert str(refused.value) == (
        f"flag dark-mode in configmap {flags.ns}/checkout-flags has no variant 'off' "
        "(variants: on); fix the catalog's 'off'"
    )
    assert flags.dump() == before


def test_unknown_flag_is_refused_naming_the_known_ones(flags: Scoped, apis: KubeApis) -> None:
    with pytest.raises(ExecutionError, match=r"no flag 'nope' \(catalog flags: payments-v2\)"):
        FlagSwitch(apis).flip(_service(flags.ns, PLAIN), "nope", actor=ALICE, drill=False)


@pytest.mark.emulator_only
def test_conflicts_are_retried_within_the_budget(flags: Scoped, apis: KubeApis) -> None:
    service = _service(flags.ns, PLAIN)
    flags.inject_faults(resource="configmaps", name="checkout-flags", conflicts=2)

    FlagSwitch(apis).flip(service, "payments-v2", actor=ALICE, drill=False)

    assert _data(flags)["PAYMENTS_V2"] == "false"


@pytest.mark.emulator_only
def test_persistent_conflicts_and_server_errors_are_retryable(
    flags: Scoped, apis: KubeApis
) -> None:
    service = _service(flags.ns, PLAIN)
    switch = FlagSwitch(apis)
    flags.inject_faults(resource="configmaps", name="checkout-flags", conflicts=WRITE_ATTEMPTS)
    with pytest.raises(ExecutionError) as conflicted:
        switch.flip(service, "payments-v2", actor=ALICE, drill=False)
    assert conflicted.value.retryable and "HTTP 409" in str(conflicted.value)

    flags.inject_faults(resource="configmaps", name="checkout-flags", errors=50)
    with pytest.raises(ExecutionError) as failed:
        switch.flip(service, "payments-v2", actor=ALICE, drill=False)
    assert failed.value.retryable and "HTTP 500" in str(failed.value)
    assert _data(flags)["PAYMENTS_V2"] == "true"


def test_a_drill_changes_nothing(flags: Scoped, apis: KubeApis) -> None:
    service = _service(flags.ns, PLAIN, FLAGD_FLAG)
    switch = FlagSwitch(apis)
    actor = Actor("U0ALICE", kube_user="alice")
    flags.backend.grant(flags.ns, "alice", [EDIT_CONFIGMAPS])
    before = flags.dump()

    plain = switch.flip(service, "payments-v2", actor=actor, drill=True)
    flagd = switch.flip(service, "new-checkout", actor=actor, drill=True)

    assert flags.dump() == before
    assert plain.change is not None and plain.change.dry_run
    assert flagd.change is not None and flagd.change.dry_run
    writes = [(e["user"], e["dryRun"]) for e in flags.audit if e["verb"] == "patch"]
    assert writes == [("alice", True), ("alice", True)]


def test_an_unreachable_api_server_is_a_retryable_error() -> None:
    from kubernetes import client as k8s

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configuration = k8s.Configuration(host=f"http://127.0.0.1:{port}")
    configuration.retries = 0
    with k8s.ApiClient(configuration) as api_client, pytest.raises(ExecutionError) as failed:
        FlagSwitch(KubeApis(api_client)).flip(
            _service("shop", PLAIN), "payments-v2", actor=ALICE, drill=False
        )

    assert failed.value.retryable
    assert "could not be reached" in str(failed.value)
