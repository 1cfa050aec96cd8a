"""The feature-flag kill switch over the Kubernetes emulator: plain and flagd flags are
flipped off and back, conflicts are retried, drills change nothing, and refusals say
what to fix."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from rollback_bot.catalog import Service
from rollback_bot.executors.bluegreen import WRITE_ATTEMPTS
from rollback_bot.executors.flag import FlagSwitch
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.model import Actor, ExecutionError
from sandbox.kube import KubeEmulator
from tests.executors.conftest import create

# Not yet on the real control plane: kept on the emulator until converted.
pytestmark = pytest.mark.emulator_only

NS = "shop"
ALICE = Actor(slack_user="U0ALICE")
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
def apis(emu: KubeEmulator) -> Iterator[KubeApis]:
    client = emu.api_client()
    client_apis = KubeApis(client)
    create(client_apis, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    create(
        client_apis,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "checkout-flags"},
            "data": {
                "PAYMENTS_V2": "true",
                "flags.json": json.dumps(FLAGD, indent=2) + "\n",
            },
        },
    )
    yield client_apis
    client.close()


def _service(*flags: dict[str, Any]) -> Service:
    return Service.model_validate(
        {
            "name": "checkout",
            "namespace": NS,
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


def _data(emu: KubeEmulator) -> dict[str, str]:
    cm = emu.get("configmaps", NS, "checkout-flags") or {}
    return dict(cm["data"])


def test_plain_flag_flips_off_and_back(emu: KubeEmulator, apis: KubeApis) -> None:
    service = _service(PLAIN)
    switch = FlagSwitch(apis)

    flipped = switch.flip(service, "payments-v2", actor=ALICE, drill=False)

    assert (flipped.old, flipped.new) == ("true", "false")
    assert flipped.change is not None and flipped.change.kind == "ConfigMap"
    assert _data(emu)["PAYMENTS_V2"] == "false"
    assert switch.current(service, "payments-v2") == "false"

    undone = switch.undo(service, "payments-v2", flipped.old, actor=ALICE, drill=False)

    assert (undone.old, undone.new) == ("false", "true")
    assert _data(emu)["PAYMENTS_V2"] == "true"


def test_flipping_an_already_off_flag_changes_nothing(emu: KubeEmulator, apis: KubeApis) -> None:
    service = _service(PLAIN)
    switch = FlagSwitch(apis)
    switch.flip(service, "payments-v2", actor=ALICE, drill=False)
    writes = len(emu.audit)

    again = switch.flip(service, "payments-v2", actor=ALICE, drill=False)

    assert again.change is None and again.old == "false"
    assert len(emu.audit) == writes


def test_undo_of_a_key_that_did_not_exist_removes_it(emu: KubeEmulator, apis: KubeApis) -> None:
    service = _service({**PLAIN, "key": "NEW_SEARCH", "name": "search"})
    switch = FlagSwitch(apis)

    flipped = switch.flip(service, "search", actor=ALICE, drill=False)
    assert flipped.old is None and _data(emu)["NEW_SEARCH"] == "false"

    switch.undo(service, "search", flipped.old, actor=ALICE, drill=False)

    assert "NEW_SEARCH" not in _data(emu)
    assert _data(emu)["PAYMENTS_V2"] == "true"


def test_flagd_flag_sets_the_default_variant_and_restores_it(
    emu: KubeEmulator, apis: KubeApis
) -> None:
    service = _service(FLAGD_FLAG)
    switch = FlagSwitch(apis)

    flipped = switch.flip(service, "new-checkout", actor=ALICE, drill=False)

    assert (flipped.old, flipped.new) == ("on", "off")
    document = json.loads(_data(emu)["flags.json"])
    assert document["flags"]["new-checkout"]["defaultVariant"] == "off"
    assert document["flags"]["dark-mode"] == FLAGD["flags"]["dark-mode"]  # type: ignore[index]

    switch.undo(service, "new-checkout", flipped.old, actor=ALICE, drill=False)

    assert _data(emu)["flags.json"] == json.dumps(FLAGD, indent=2) + "\n"


def test_flagd_refuses_a_variant_the_flag_does_not_have(emu: KubeEmulator, apis: KubeApis) -> None:
    service = _service({**FLAGD_FLAG, "name": "dark-mode"})
    before = emu.dump()

    with pytest.raises(ExecutionError) as refused:
        FlagSwitch(apis).flip(service, "dark-mode", actor=ALICE, drill=False)

    assert str(refused.value) == (
        "flag dark-mode in configmap shop/checkout-flags has no variant 'off' "
        "(variants: on); fix the catalog's 'off'"
    )
    assert emu.dump() == before


def test_unknown_flag_is_refused_naming_the_known_ones(apis: KubeApis) -> None:
    with pytest.raises(ExecutionError, match=r"no flag 'nope' \(catalog flags: payments-v2\)"):
        FlagSwitch(apis).flip(_service(PLAIN), "nope", actor=ALICE, drill=False)


def test_conflicts_are_retried_within_the_budget(emu: KubeEmulator, apis: KubeApis) -> None:
    service = _service(PLAIN)
    emu.inject_faults(resource="configmaps", namespace=NS, name="checkout-flags", conflicts=2)

    FlagSwitch(apis).flip(service, "payments-v2", actor=ALICE, drill=False)

    assert _data(emu)["PAYMENTS_V2"] == "false"


def test_persistent_conflicts_and_server_errors_are_retryable(
    emu: KubeEmulator, apis: KubeApis
) -> None:
    service = _service(PLAIN)
    switch = FlagSwitch(apis)
    emu.inject_faults(
        resource="configmaps", namespace=NS, name="checkout-flags", conflicts=WRITE_ATTEMPTS
    )
    with pytest.raises(ExecutionError) as conflicted:
        switch.flip(service, "payments-v2", actor=ALICE, drill=False)
    assert conflicted.value.retryable and "HTTP 409" in str(conflicted.value)

    emu.inject_faults(resource="configmaps", namespace=NS, name="checkout-flags", errors=50)
    with pytest.raises(ExecutionError) as failed:
        switch.flip(service, "payments-v2", actor=ALICE, drill=False)
    assert failed.value.retryable and "HTTP 500" in str(failed.value)
    assert _data(emu)["PAYMENTS_V2"] == "true"


def test_a_drill_changes_nothing(emu: KubeEmulator, apis: KubeApis) -> None:
    service = _service(PLAIN, FLAGD_FLAG)
    switch = FlagSwitch(apis)
    before = emu.dump()
    actor = Actor("U0ALICE", kube_user="alice")

    plain = switch.flip(service, "payments-v2", actor=actor, drill=True)
    flagd = switch.flip(service, "new-checkout", actor=actor, drill=True)

    assert emu.dump() == before
    assert plain.change is not None and plain.change.dry_run
    assert flagd.change is not None and flagd.change.dry_run
    writes = [(e["user"], e["dryRun"]) for e in emu.audit if e["verb"] == "patch"]
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
            _service(PLAIN), "payments-v2", actor=ALICE, drill=False
        )

    assert failed.value.retryable
    assert "could not be reached" in str(failed.value)
