"""Services on two clusters, side by side: two emulators, one kubeconfig with two contexts.

``checkout-west`` and ``checkout-east`` are the same Deployment (``shop/checkout``) on two
clusters. Each is read, planned, rolled back and verified on its own cluster; both can be
active at once (one active rollback per service and cluster), a second request for the
same one is refused; the cluster is in the plan, the messages and the timeline; and when
one API server goes away ``/readyz`` names that cluster.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from rollback_bot.config import Settings
from rollback_bot.incidents.watcher import template_digest
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.clusters import ClusterConfigError, Clusters
from sandbox.kube import KubeEmulator
from sandbox.stack import LoopbackStack, deployment_manifest, wait_until
from tests.e2e.conftest import ALICE, BOB, CHANNEL, FAST_SLACK, alertmanager_payload
from tests.e2e.execute_support import (
    command_reply,
    events,
    incident_open,
    latest_rollback_id,
    manual_changes,
    request,
    wait_state,
)
from tests.e2e.test_slack_commands import request_via_command, wait_told

NS = "shop"


def two_context_kubeconfig(path: Path, clusters: dict[str, str]) -> str:
    """One kubeconfig, one context per cluster (name -> API server URL)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": url}} for n, url in clusters.items()],
        "users": [{"name": "sandbox-admin", "user": {"token": "sandbox"}}],
        "contexts": [
            {"name": n, "context": {"cluster": n, "user": "sandbox-admin"}} for n in clusters
        ],
        "current-context": next(iter(clusters)),
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def _service(name: str, cluster: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": NS,
        "deployment": "checkout",
        "cluster": cluster,
        "environment": "production",
        "channel": CHANNEL,
        "match": {"service": name},
        "policy": {"requesters": {"users": [ALICE]}, "approvers": {"users": [BOB]}},
        "health": {"timeout_seconds": 20, "wait_seconds": 0},
        "stable_window_seconds": 0,
    }


PRICING_EAST = {
    **_service("pricing-east", "east"),
    "deployment": "pricing",
    "environment": "staging",  # no second person: the flip itself is what is tested
    "flags": [{"name": "new-pricing", "configmap": "pricing-flags", "key": "NEW_PRICING"}],
}
CATALOG = {
    "services": [_service("checkout-west", "west"), _service("checkout-east", "east"), PRICING_EAST]
}


class TwoClusterStack(LoopbackStack):
    """The loopback stack whose bot reads a kubeconfig with a context per cluster: "west"
    (the stack's own emulator, also the default client) and, when given, "east"."""

    def __init__(self, *, kubeconfig: Path, east_url: str | None, **kw: Any) -> None:
        super().__init__(**kw)
        self.kubeconfig, self.east_url = kubeconfig, east_url

    def settings(self) -> Settings:
        return super().settings().model_copy(update={"kubeconfig": str(self.kubeconfig)})

    def start_bot(self) -> None:
        urls = {"west": self.kube.url, **({"east": self.east_url} if self.east_url else {})}
        two_context_kubeconfig(self.kubeconfig, urls)
        super().start_bot()


def _release(apis: KubeApis, emu: KubeEmulator, image_base: str) -> None:
    if emu.get("namespaces", "", NS) is None:
        apis.core.create_namespace({"metadata": {"name": NS}})  # type: ignore[arg-type]
    apis.apps.create_namespaced_deployment(NS, deployment_manifest("checkout", f"{image_base}:v1"))  # type: ignore[arg-type]
    emu.wait_for(
        lambda: (
            (emu.get("deployments", NS, "checkout") or {})
            .get("status", {})
            .get("availableReplicas")
            == 2
        ),
        10,
    )  # type: ignore[union-attr]
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "app", "image": f"{image_base}:v2"}]}}
        }
    }
    apis.apps.patch_namespaced_deployment("checkout", NS, patch)


def _image(emu: KubeEmulator) -> str:
    found = emu.get("deployments", NS, "checkout")
    assert found is not None
    return str(found["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.fixture
def east() -> Iterator[KubeEmulator]:
    emu = KubeEmulator(ready_delay=0.05).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def stack(migrated_url: str, east: KubeEmulator, tmp_path: Path) -> Iterator[TwoClusterStack]:
    with TwoClusterStack(
        kubeconfig=tmp_path / "kubeconfig",
        east_url=east.url,
        slack_channel_rate=FAST_SLACK,
        catalog=CATALOG,
        database_url=migrated_url,
        ready_delay=0.05,
    ) as s:
        yield s


def test_services_on_two_clusters_are_rolled_back_side_by_side(
    stack: TwoClusterStack, east: KubeEmulator
) -> None:
    _release(stack.apis(), stack.kube, "registry.local/west")
    _release(KubeApis(east.api_client()), east, "registry.local/east")

    west_id = request(stack, "checkout-west")
    east_id = request(stack, "checkout-east")  # both active at once: one per service+cluster
    request_via_command(stack, "checkout-east")  # the same service and cluster again
    wait_told(stack, ALICE, f"already has an active rollback R-{east_id}", None)
    assert latest_rollback_id(stack) == east_id

    for rid in (west_id, east_id):
        command_reply(stack, f"approve R-{rid}", user=BOB)
    wait_state(stack, west_id, "done")
    wait_state(stack, east_id, "done")
    # Each cluster rolled back its own Deployment, to its own previous image.
    assert _image(stack.kube) == "registry.local/west:v1"
    assert _image(east) == "registry.local/east:v1"
    assert any(a.get("verb") == "patch" and a.get("name") == "checkout" for a in east.audit)

    # The cluster is in the plan, the timeline and the messages.
    services = stack.services
    assert services is not None
    with services.uow(read_only=True) as uow:
        east_row = uow.rollbacks.get(id=east_id)
    assert east_row is not None
    assert east_row.plan["changes"][0] == "cluster: east (kubeconfig context)"
    assert east_row.plan["detail"]["cluster"] == "east"
    requested = next(e for e in events(stack, east_id) if e.kind == "rollback.requested")
    assert "checkout-east/production @east" in requested.summary
    services.outbox.flush(timeout=10)
    said = "\n".join(
        m.get("text", "") + json.dumps(m.get("blocks") or [])
        for top in stack.slack.messages(CHANNEL)
        for m in [top, *stack.slack.thread(CHANNEL, top["ts"])]
    )
    assert "checkout-east (production @east)" in said
    assert "checkout-west (production @west)" in said


def test_a_kill_switch_flips_the_flag_on_the_services_own_cluster(
    stack: TwoClusterStack, east: KubeEmulator
) -> None:
    flags = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pricing-flags"}}
    for apis in (stack.apis(), KubeApis(east.api_client())):
        with contextlib.suppress(k8s.ApiException):  # west's may exist already
            apis.core.create_namespace({"metadata": {"name": NS}})  # type: ignore[arg-type]
        # The same ConfigMap on both clusters: only east's may change.
        data = {**flags, "data": {"NEW_PRICING": "true"}}
        apis.core.create_namespaced_config_map(NS, data)  # type: ignore[arg-type]
    east_apis = KubeApis(east.api_client())
    east_apis.apps.create_namespaced_deployment(  # type: ignore[arg-type]
        NS, deployment_manifest("pricing", "registry.local/pricing:v1")
    )
    before = latest_rollback_id(stack) or 0
    reply = stack.driver.command("flag pricing-east new-pricing", user_id=ALICE, channel_id=CHANNEL)
    assert reply.status_code == 200
    wait_until(lambda: (latest_rollback_id(stack) or 0) > before, timeout=20)
    rollback_id = latest_rollback_id(stack)
    assert rollback_id is not None
    wait_state(stack, rollback_id, "done")
    on_east = east.get("configmaps", NS, "pricing-flags") or {}
    on_west = stack.kube.get("configmaps", NS, "pricing-flags") or {}
    assert on_east["data"] == {"NEW_PRICING": "false"}
    assert on_west["data"] == {"NEW_PRICING": "true"}
    assert not [
        a for a in stack.kube.audit if a.get("name") == "pricing-flags" and a.get("verb") == "patch"
    ]


def test_a_change_by_hand_on_a_named_cluster_is_noticed_there(
    stack: TwoClusterStack, east: KubeEmulator
) -> None:
    east_apis = KubeApis(east.api_client())
    _release(east_apis, east, "registry.local/east")
    _release(stack.apis(), stack.kube, "registry.local/west")
    assert stack.services is not None and stack.services.watcher is not None
    watcher = stack.services.watcher
    on_east = east.get("deployments", NS, "checkout") or {}
    wait_until(
        lambda: watcher.digest_seen(NS, "checkout", "east") == template_digest(on_east),
        timeout=20,
    )
    alert = alertmanager_payload("checkout-east")
    assert stack.post_alert("alertmanager", alert).status_code == 200

    wait_until(lambda: incident_open(stack, "checkout-east"), timeout=20)
    # The same change on west (where checkout-west has no incident) is not east's.
    hotfix = {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "x:hotfix"}]}}}
    }
    stack.apis().apps.patch_namespaced_deployment("checkout", NS, hotfix)
    east_apis.apps.patch_namespaced_deployment("checkout", NS, hotfix)

    (found,) = wait_until(lambda: manual_changes(stack, "checkout-east"), timeout=20)
    assert found.service == "checkout-east" and found.data["cluster"] == "east"
    assert f"deployment {NS}/checkout @east was changed outside the bot" in found.summary
    assert found.data["images"] == ["x:hotfix"]


def test_readyz_names_the_cluster_that_is_down(stack: TwoClusterStack, east: KubeEmulator) -> None:
    ready = stack.http.get(f"{stack.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert {"kubernetes", "kubernetes:east"} <= set(checks)
    east.stop()

    def down() -> Any:
        answer = stack.http.get(f"{stack.url}/readyz", timeout=10)
        return (answer,) if answer.status_code == 503 else None  # a 503 Response is falsy

    (answer,) = wait_until(down, timeout=20, interval=0.5)
    body = answer.json()
    assert body["checks"]["kubernetes:east"]["ok"] is False
    assert "does not answer" in body["checks"]["kubernetes:east"]["detail"]
    assert body["checks"]["kubernetes"]["ok"] is True
    assert "kubernetes:east" in body["error"]


def test_a_cluster_missing_from_the_kubeconfig_stops_the_start_naming_it(
    tmp_path: Path, migrated_url: str
) -> None:
    kubeconfig = tmp_path / "kc"
    two_context_kubeconfig(kubeconfig, {"west": "http://127.0.0.1:9"})
    default = KubeApis(k8s.ApiClient(k8s.Configuration(host="http://127.0.0.1:9")))
    with pytest.raises(ClusterConfigError, match="cluster 'east': no such context"):
        Clusters.load(default, ["west", "east"], kubeconfig=str(kubeconfig))
    # The bot itself does not start: it names the context, before serving anything.
    stack = TwoClusterStack(
        kubeconfig=kubeconfig, east_url=None, catalog=CATALOG, database_url=migrated_url
    )
    try:
        with pytest.raises(ClusterConfigError, match="cluster 'east': no such context"):
            stack.start()
        assert stack.services is None
    finally:
        stack.stop()
