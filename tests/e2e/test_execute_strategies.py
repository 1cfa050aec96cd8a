"""Each strategy through the running bot: the objects afterwards, kubectl's view, the refusals."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollback_bot.slack.ui import action_ids
from sandbox.stack import LoopbackStack, deployment_manifest, wait_until
from tests.e2e.conftest import MakeStack
from tests.e2e.execute_support import (
    ALICE,
    CHANNEL,
    NS,
    WAIT,
    FakeAlertmanager,
    click,
    command_reply,
    create,
    events,
    image,
    landed,
    latest_rollback_id,
    open_modal,
    release_bluegreen,
    release_gradual,
    release_instant,
    replicas,
    request,
    revision,
    running_alertmanager,
    running_stack,
    said,
    settled,
    wait_state,
    writes,
)
from tests.support import tools


@pytest.fixture
def alertmanager() -> Iterator[FakeAlertmanager]:
    yield from running_alertmanager()


@pytest.fixture
def stack(
    make_stack: MakeStack, migrated_url: str, alertmanager: FakeAlertmanager
) -> Iterator[LoopbackStack]:
    yield from running_stack(make_stack, migrated_url, alertmanager)


def _kubectl(stack: LoopbackStack, tmp_path: Path, *args: str) -> str:
    kubeconfig = stack.kube.write_kubeconfig(tmp_path / "kubeconfig")
    return subprocess.run(
        [
            tools.kubectl(),
            "--kubeconfig",
            kubeconfig,
            "--cache-dir",
            str(tmp_path / "cache"),
            "-n",
            stack.ns(NS),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


def test_instant_restores_the_previous_revision_and_its_config(
    stack: LoopbackStack, tmp_path: Path
) -> None:
    release_instant(stack)
    rollback_id = request(stack, "api")
    row = wait_state(stack, rollback_id, "done")
    assert row.from_revision == "2" and row.to_revision == "1"

    assert image(stack, "api") == "registry.local/api:v1"
    assert revision(stack, "api") == "3"
    cm = stack.kube.get("configmaps", NS, "api-config") or {}
    assert cm["data"] == {"MODE": "fast"}  # no checkpoint of revision 1's config exists yet

    history = _kubectl(stack, tmp_path, "rollout", "history", "deployment/api")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]
    status = _kubectl(stack, tmp_path, "rollout", "status", "deployment/api", "--timeout=20s")
    assert "successfully rolled out" in status

    kinds = [e.kind for e in events(stack, rollback_id)]
    assert kinds.index("rollback.executing") < kinds.index("kube.changed")
    assert kinds[-1] == "rollback.done"
    assert said(stack, "rolled back to revision 1")


def test_instant_restores_the_configmaps_the_target_revision_ran_with(
    stack: LoopbackStack,
) -> None:
    release_instant(stack)
    first = request(stack, "api")  # checkpoint: revision 2 ran with MODE=fast
    wait_state(stack, first, "done")
    stack.apis().core.patch_namespaced_config_map(
        "api-config", stack.ns(NS), {"data": {"MODE": "broken"}}
    )
    stack.kube.heal_image("registry.local/api:v2")
    # The bot rolled back from revision 2, so it is known bad until someone says otherwise.
    assert "marked good" in command_reply(stack, "mark api 2 good the crash is fixed")

    second = request(stack, "api --to 2")
    wait_state(stack, second, "done")
    cm = stack.kube.get("configmaps", NS, "api-config") or {}
    assert cm["data"] == {"MODE": "fast"}
    assert image(stack, "api") == "registry.local/api:v2"
    changed = [e.summary for e in events(stack, second) if e.kind == "kube.changed"]
    assert any("ConfigMap/api-config" in line for line in changed), changed


def test_blue_green_switches_the_service_selector(stack: LoopbackStack, tmp_path: Path) -> None:
    release_bluegreen(stack)
    rollback_id = request(stack, "web")
    wait_state(stack, rollback_id, "done")
    svc = stack.kube.get("services", NS, "web") or {}
    assert svc["spec"]["selector"] == {"app": "web", "slot": "blue"}
    wide = _kubectl(stack, tmp_path, "get", "service", "web", "-o", "wide")
    assert "slot=blue" in wide
    assert [a["resource"] for a in writes(stack, "web", dry_run=False)] == ["services"]


def test_blue_green_refuses_a_target_slot_scaled_to_zero(stack: LoopbackStack) -> None:
    release_bluegreen(stack)
    stack.apis().apps.patch_namespaced_deployment(
        "web-blue", stack.ns(NS), {"spec": {"replicas": 0}}
    )
    stack.kube.wait_for(
        lambda: (
            not (stack.kube.get("deployments", NS, "web-blue") or {})
            .get("status", {})
            .get("availableReplicas")
        ),
        timeout=30,
    )
    modal = open_modal(stack, "web")
    assert "scaled to zero" in json.dumps(modal["blocks"])
    svc = stack.kube.get("services", NS, "web") or {}
    assert svc["spec"]["selector"]["slot"] == "green"
    told = wait_until(
        lambda: [r for r in stack.slack.responses if "scaled to zero" in json.dumps(r)],
        timeout=WAIT,
    )
    assert told
    assert latest_rollback_id(stack) is None  # nothing was requested, nothing half-done
    assert writes(stack, "web") == []


def test_gradual_by_replicas_steps_down_to_zero(stack: LoopbackStack, tmp_path: Path) -> None:
    release_gradual(stack, "shopfront")
    rollback_id = request(stack, "shopfront")
    wait_state(stack, rollback_id, "done")
    assert replicas(stack, "shopfront-canary") == 0
    assert replicas(stack, "shopfront") == 10
    view = _kubectl(stack, tmp_path, "get", "deployment", "shopfront", "shopfront-canary")
    rows = {line.split()[0]: line.split()[1] for line in view.splitlines()[1:]}
    assert rows == {"shopfront": "10/10", "shopfront-canary": "0/0"}
    steps = [e for e in events(stack, rollback_id) if e.kind == "rollback.step"]
    assert len(steps) == 3  # 50, 20, 5 applied and gated; 0 is the last and goes to verify
    passed = [e for e in events(stack, rollback_id) if e.kind == "health.passed"]
    assert len(passed) == 3
    # 50% is where it already was; then 2, 1, 0 canary replicas: one write each.
    assert len(landed(stack, "shopfront-canary")) == 3
    assert len(landed(stack, "shopfront")) == 3


def test_gradual_by_ingress_weight_steps_down_to_zero(stack: LoopbackStack) -> None:
    release_gradual(stack, "cart", ingress=True)
    rollback_id = request(stack, "cart")
    wait_state(stack, rollback_id, "done")
    ingress = stack.kube.get("ingresses", NS, "cart-canary") or {}
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "0"
    weights = [e.summary for e in events(stack, rollback_id) if e.kind == "kube.changed"]
    assert [w.rsplit("-> ", 1)[1] for w in weights] == ["20", "5", "0"]  # 50 was already there


def test_flag_kill_switch_turns_the_flag_off_and_one_click_undoes_it(
    stack: LoopbackStack,
) -> None:
    create(stack, {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api-flags"},
        "data": {"NEW_PRICING": "true", "OTHER": "1"},
    })  # fmt: skip
    stack.deploy(NS, deployment_manifest("api", "registry.local/api:v1"))
    settled(stack, "api")
    before = latest_rollback_id(stack) or 0
    resp = stack.driver.command("flag api new-pricing", user_id=ALICE, channel_id=CHANNEL)
    assert resp.status_code == 200
    killed = wait_until(lambda: (latest_rollback_id(stack) or 0) > before, timeout=WAIT)
    assert killed
    rollback_id = latest_rollback_id(stack)
    assert rollback_id is not None
    wait_state(stack, rollback_id, "done")
    cm = stack.kube.get("configmaps", NS, "api-flags") or {}
    assert cm["data"] == {"NEW_PRICING": "false", "OTHER": "1"}
    # kubectl describe shows which rollback flipped it and who asked.
    cause = cm["metadata"]["annotations"]["kubernetes.io/change-cause"]
    assert f"R-{rollback_id}" in cause and ALICE in cause

    click(stack, action_ids.UNDO_FLAG)
    undo = wait_until(lambda: (latest_rollback_id(stack) or 0) > rollback_id, timeout=WAIT)
    assert undo
    wait_state(stack, rollback_id + 1, "done")
    cm = stack.kube.get("configmaps", NS, "api-flags") or {}
    assert cm["data"] == {"NEW_PRICING": "true", "OTHER": "1"}
    assert f"R-{rollback_id + 1}" in cm["metadata"]["annotations"]["kubernetes.io/change-cause"]
