"""The manual-change watcher's "watch expired" branch, on both backends.

A quiet namespace on a busy cluster: the watcher's last resourceVersion is the one it listed
at, and by the time its watch is resumed that version is gone (etcd compacted it; the
emulator's bounded history dropped it). A real apiserver then answers 200 and one ERROR
event carrying a 410 Expired Status, not an HTTP 410; the watcher must list again and go on
noticing changes made by hand.

On the real plane this test starts its own control plane with the Deployments' watch cache
off (``--watch-cache-sizes=deployments.apps#0``), so Deployment watches are served by etcd
and a compaction expires a version at once (measured: with the cache on, the apiserver
keeps serving a compacted version from its cache until its buffer evicts it, which takes
more than the 75 s the cache keeps events fresh); the ERROR event is the same one the
cache sends (``cacher.go``). The compaction is the one the apiserver runs every five
minutes (``--etcd-compaction-interval``), done now through etcd's API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from rollback_bot.incidents import watcher as watcher_module
from rollback_bot.incidents.watcher import template_digest
from sandbox.kube import KubeEmulator
from sandbox.realk8s import RealControlPlane
from sandbox.stack import LoopbackStack, deployment_manifest, wait_until
from tests.e2e.conftest import ALICE, BOB, FAST_SLACK, alertmanager_payload
from tests.e2e.execute_support import incident_open, manual_changes
from tests.support.backend import EMULATOR, REAL
from tests.support.realk8s import require_binaries

NS = "shop"
WAIT = 90.0
CATALOG: dict[str, Any] = {
    "services": [
        {
            "name": "api",
            "namespace": NS,
            "deployment": "api",
            "environment": "staging",
            "channel": "C0WATCH",
            "match": {"service": "api"},
            "policy": {"requesters": {"users": [ALICE]}, "approvers": {"users": [BOB]}},
            "health": {"timeout_seconds": 20, "wait_seconds": 0},
        }
    ]
}
EMULATOR_HISTORY = 64  # watch events the emulator keeps: more writes than this expire a version


@pytest.fixture(scope="module")
def etcd_watch_plane() -> Iterator[RealControlPlane]:
    """A control plane whose Deployment watches etcd serves (see the module's docstring)."""
    plane = RealControlPlane(
        bin_dir=require_binaries(), apiserver_args=("--watch-cache-sizes=deployments.apps#0",)
    )
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(params=[EMULATOR, REAL])
def stack(
    request: pytest.FixtureRequest,
    migrated_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[LoopbackStack]:
    # The server ends each watch after this long and the watcher resumes from its last
    # version: the resume is what meets the expired version (in production every 300 s).
    monkeypatch.setattr(watcher_module, "WATCH_SECONDS", 1)
    options: dict[str, Any] = {
        "catalog": CATALOG,
        "database_url": migrated_url,
        "slack_channel_rate": FAST_SLACK,
    }
    s: LoopbackStack
    if request.param == REAL:
        from tests.support.realstack import RealE2EStack

        plane = request.getfixturevalue("etcd_watch_plane")
        s = RealE2EStack(plane=plane, work_dir=tmp_path, **options)
    else:
        s = LoopbackStack(ready_delay=0.05, **options)
        s.kube = KubeEmulator(ready_delay=0.05, watch_history=EMULATOR_HISTORY)
    with s:
        yield s


def expire(stack: LoopbackStack) -> None:
    """Writes elsewhere on the cluster, then the version the watcher holds is gone."""
    emulated = isinstance(stack.kube, KubeEmulator)
    other = stack.ns("elsewhere")
    core = stack.apis().core
    if emulated:
        core.create_namespace({"metadata": {"name": other}})  # type: ignore[arg-type]
    for i in range(EMULATOR_HISTORY + 10 if emulated else 3):
        body = {"metadata": {"name": f"busy-{i}"}, "data": {"i": str(i)}}
        created = core.create_namespaced_config_map(other, body)  # type: ignore[arg-type]
    if not emulated:
        plane: RealControlPlane = stack.plane  # type: ignore[attr-defined]
        revision = created.metadata.resource_version
        r = requests.post(
            f"http://127.0.0.1:{plane.ports['etcd']}/v3/kv/compaction",
            json={"revision": revision, "physical": True},
            timeout=30,
        )
        r.raise_for_status()


def test_an_expired_watch_is_listed_again_and_a_change_by_hand_is_still_noticed(
    stack: LoopbackStack,
) -> None:
    ns = stack.ns(NS)
    stack.deploy(NS, deployment_manifest("api", "registry.local/api:v1"))
    stack.wait_available(NS, "api")
    assert stack.services is not None and stack.services.watcher is not None
    watcher = stack.services.watcher
    current = template_digest(stack.deployment(NS, "api"))
    wait_until(lambda: watcher.digest_seen(ns, "api") == current, timeout=WAIT)
    # The namespace is quiet from here: the watcher's version stays the last one it saw.

    before = watcher.expired
    expire(stack)
    wait_until(lambda: watcher.expired > before, timeout=WAIT)

    assert stack.post_alert("alertmanager", alertmanager_payload("api")).status_code == 200
    wait_until(lambda: incident_open(stack), timeout=WAIT)
    stack.set_image(NS, "api", "registry.local/api:hotfix")  # someone with kubectl
    found = wait_until(lambda: manual_changes(stack), timeout=WAIT)
    assert [e.data["images"] for e in found] == [["registry.local/api:hotfix"]]
    assert found[0].incident_id is not None and "changed outside the bot" in found[0].summary
