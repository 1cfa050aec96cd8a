"""A Helm release rolled back from Slack, through approval, with the real helm on the real
apiserver; the result compared with a second release rolled back by hand.

The bot runs as the ``rollback-bot`` identity bound to exactly deploy/rbac/helm-releases.yaml
in a fresh namespace, reads the release history from Helm's Secrets, shows the chart and
values diff (a secret value never shown), runs ``helm rollback --wait`` (``--dry-run`` for a
drill) and records the new Helm revision on the timeline. ``helm history`` of the two
releases must then read the same.

Real-only: the emulator does not run helm. Without helm and the control plane binaries
these skip, and fail under CI=true (``tests.support.realk8s.require_binaries``).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollback_bot.kube.client import KubeApis, api_client_from_env
from rollback_bot.kube.helm_releases import read_history
from rollback_bot.slack.ui import action_ids
from rollback_bot.timeline import TimelineKind
from sandbox.realk8s import RealControlPlane, iter_audit
from sandbox.stack import wait_until
from tests.e2e.conftest import FAST_SLACK, alertmanager_payload
from tests.e2e.execute_support import (
    ALICE,
    BOB,
    CHANNEL,
    WAIT,
    button,
    click,
    command_reply,
    events,
    latest_rollback_id,
    request,
    wait_state,
)
from tests.support.realk8s import unique_name
from tests.support.realstack import RealClusterStack

ROOT = Path(__file__).resolve().parents[2]
HELM_ROLE = ROOT / "deploy" / "rbac" / "helm-releases.yaml"
GOOD_TOKEN = "tok-good-1111"
BAD_TOKEN = "tok-bad-2222"

TEMPLATES = {
    "templates/configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  MODE: {{ .Values.config.mode | quote }}
""",
    "templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels: {app: {{ .Release.Name }}}
spec:
  replicas: 2
  progressDeadlineSeconds: 30
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: app
          image: {{ .Values.image | quote }}
          envFrom:
            - configMapRef: {name: {{ .Release.Name }}-config}
""",
}


def _chart(root: Path, version: str, app: str, image: str, mode: str, token: str) -> Path:
    files = {
        "Chart.yaml": f"apiVersion: v2\nname: checkout\nversion: {version}\nappVersion: '{app}'\n",
        "values.yaml": yaml.safe_dump(
            {"image": image, "config": {"mode": mode}, "apiToken": token}
        ),
        **TEMPLATES,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


class Helm:
    """helm as the administrator (arranging the cluster, and the rollback "by hand")."""

    def __init__(self, cp: RealControlPlane, home: Path, namespace: str) -> None:
        self.cp, self.home, self.namespace = cp, home, namespace

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        argv = [
            str(self.cp.binary("helm")),
            f"--kubeconfig={self.cp.kubeconfig_path}",
            "--kube-context=admin",
            f"--namespace={self.namespace}",
            *args,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=150, env=env)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
        return done

    def history(self, release: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self("history", release, "-o", "json").stdout)
        return rows


def _bind_helm_role(cp: RealControlPlane, namespace: str, *, without: str = "") -> None:
    """deploy/rbac/helm-releases.yaml in ``namespace``, bound to the bot's test identity
    (optionally with the rules on one resource taken away)."""
    docs = [d for d in yaml.safe_load_all(HELM_ROLE.read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "Role" and without:
            doc["rules"] = [r for r in doc["rules"] if without not in r["resources"]]
        if doc["kind"] == "RoleBinding":
            doc["subjects"] = [
                {"kind": "User", "name": "rollback-bot", "apiGroup": "rbac.authorization.k8s.io"}
            ]
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def _catalog(namespace: str, release: str) -> dict[str, Any]:
    return {
        "services": [
            {
                "name": "checkout",
                "environment": "production",  # one approval by someone else
                "channel": CHANNEL,
                "match": {"service": "checkout"},
                "helm": {"release": release, "namespace": namespace, "timeout": "90s"},
                "policy": {"requesters": {"users": [ALICE]}, "approvers": {"users": [BOB]}},
                "health": {"wait_seconds": 0, "timeout_seconds": 120},
                "stable_window_seconds": 0,  # v1 ran alert-free until v2 replaced it
            }
        ]
    }


@pytest.fixture
def arranged(
    real_control_plane: RealControlPlane, tmp_path: Path
) -> Iterator[tuple[RealControlPlane, Helm, str, str, str]]:
    """A namespace with two releases of the same chart, each v1 (good) then v2 (crashing)."""
    cp = real_control_plane
    namespace = unique_name("shop")
    cp.kubectl("create", "namespace", namespace)
    _bind_helm_role(cp, namespace)
    helm = Helm(cp, tmp_path / "helm", namespace)
    v1 = _chart(tmp_path / "v1", "0.1.0", "1", "shop/checkout:1.0", "safe", GOOD_TOKEN)
    v2 = _chart(tmp_path / "v2", "0.2.0", "2", "shop/checkout:2.0-crash", "fast", BAD_TOKEN)
    bot, by_hand = unique_name("checkout"), unique_name("byhand")
    for release in (bot, by_hand):
        helm("install", release, str(v1), "--wait", "--timeout=60s")
        helm("upgrade", release, str(v2))  # deployed, and its pods crash
    try:
        yield cp, helm, namespace, bot, by_hand
    finally:
        cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _stack(cp: RealControlPlane, tmp_path: Path, url: str, ns: str, rel: str) -> RealClusterStack:
    kubeconfig = cp.write_kubeconfig(tmp_path / "bot.kubeconfig", current="rollback-bot")
    return RealClusterStack(
        kubeconfig=kubeconfig,
        helm_bin=str(cp.binary("helm")),
        slack_channel_rate=FAST_SLACK,
        catalog=_catalog(ns, rel),
        database_url=url,
    )


def _message_with(stack: RealClusterStack, action_id: str) -> dict[str, Any] | None:
    assert stack.services is not None
    stack.services.outbox.flush(timeout=5)
    return next((m for m in stack.slack.messages(CHANNEL) if button(m, action_id)), None)


def _button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    found = button(message, action_id)
    assert found is not None
    return found


def _summary(history: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (h["revision"], h["status"], h["chart"], h["app_version"], h["description"])
        for h in history
    ]


def test_helm_release_rolled_back_from_slack_reads_as_a_rollback_by_hand(
    arranged: tuple[RealControlPlane, Helm, str, str, str], migrated_url: str, tmp_path: Path
) -> None:
    cp, helm, namespace, release, by_hand = arranged
    with _stack(cp, tmp_path, migrated_url, namespace, release) as stack:
        # /rollback history reads as helm history, with what is known about each revision.
        history = command_reply(stack, "history checkout")
        assert "checkout-0.2.0 (app 2), deployed: Upgrade complete" in history, history
        assert "checkout-0.1.0 (app 1), superseded: Install complete" in history

        # The alert card: what runs now and the last stable revision, and "Roll back".
        assert stack.post_alert("alertmanager", alertmanager_payload()).status_code == 200
        card = wait_until(lambda: _message_with(stack, action_ids.ROLL_BACK), timeout=WAIT)
        assert "checkout-0.2.0" in json.dumps(card["blocks"])
        assert "checkout-0.1.0" in json.dumps(card["blocks"])  # the last stable revision
        seen = len(stack.slack.views)
        stack.driver.click(
            action_id=action_ids.ROLL_BACK,
            value=_button(card, action_ids.ROLL_BACK)["value"],
            user_id=ALICE,
            channel_id=CHANNEL,
            message_ts=card["ts"],
        )
        update = wait_until(
            lambda: next((v for v in stack.slack.views[seen:] if v["op"] == "update"), None),
            timeout=WAIT,
        )
        view = update["view"]
        # The confirmation shows the chart and values diff, the token never.
        modal = json.dumps(view)
        assert "checkout-0.2.0" in modal and "checkout-0.1.0" in modal, modal[:3000]
        assert "shop/checkout:2.0-crash" in modal and "shop/checkout:1.0" in modal
        assert "values.config.mode" in modal
        assert GOOD_TOKEN not in modal and BAD_TOKEN not in modal
        assert "[redacted]" in modal
        stack.driver.submit_view(
            callback_id=action_ids.REQUEST_MODAL,
            user_id=ALICE,
            private_metadata=view["private_metadata"],
            values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "5xx after 0.2.0"}},
        )
        rollback_id = int(wait_until(lambda: latest_rollback_id(stack), timeout=WAIT))
        row = wait_state(stack, rollback_id, "requested")
        assert (row.from_revision, row.to_revision) == ("2", "1")
        assert row.incident_id is not None  # the alert's incident
        click(stack, action_ids.APPROVE, user=BOB)
        row = wait_state(stack, rollback_id, "done")

        changed = [e for e in events(stack, rollback_id) if e.kind == TimelineKind.KUBE_CHANGED]
        assert len(changed) == 1
        assert "HelmRelease/" + release in changed[0].summary
        assert "new Helm revision 3" in changed[0].summary
        # The postmortem tells it as it tells a Deployment rollback.
        assert stack.services is not None and row.incident_id is not None
        _, postmortem = stack.services.queries.postmortem(row.incident_id, "md")
        assert f"HelmRelease/{release}" in postmortem and "new Helm revision 3" in postmortem
        assert GOOD_TOKEN not in postmortem and BAD_TOKEN not in postmortem
        everything = " ".join(
            e.summary + json.dumps(e.data or {}) for e in events(stack, rollback_id)
        )
        assert GOOD_TOKEN not in everything and BAD_TOKEN not in everything

    helm("rollback", by_hand, "1", "--wait", "--timeout=90s")
    ours, theirs = helm.history(release), helm.history(by_hand)
    assert _summary(ours) == _summary(theirs)
    assert _summary(ours) == [
        (1, "superseded", "checkout-0.1.0", "1", "Install complete"),
        (2, "superseded", "checkout-0.2.0", "2", "Upgrade complete"),
        (3, "deployed", "checkout-0.1.0", "1", "Rollback to 1"),
    ]
    deployment = json.loads(
        cp.kubectl("get", "deployment", release, "-n", namespace, "-o", "json").stdout
    )
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/checkout:1.0"
    config = json.loads(
        cp.kubectl("get", "configmap", f"{release}-config", "-n", namespace, "-o", "json").stdout
    )
    assert config["data"] == {"MODE": "safe"}
    # helm ran as the bot's identity, with the rights of helm-releases.yaml only.
    secret = f"sh.helm.release.v1.{release}.v3"
    created = iter_audit(
        cp.audit_events(),
        verb="create",
        **{"objectRef.resource": "secrets", "objectRef.name": secret},
    )
    writers = {e["user"]["username"] for e in created}
    assert writers == {"rollback-bot"}


def test_helm_drill_runs_helm_rollback_dry_run_and_changes_nothing(
    arranged: tuple[RealControlPlane, Helm, str, str, str], migrated_url: str, tmp_path: Path
) -> None:
    cp, helm, namespace, release, _ = arranged
    before = _summary(helm.history(release))
    with _stack(cp, tmp_path, migrated_url, namespace, release) as stack:
        rollback_id = request(stack, "drill checkout")
        wait_state(stack, rollback_id, "requested")
        click(stack, action_ids.APPROVE, user=BOB)
        row = wait_state(stack, rollback_id, "done", "failed")
        said = "; ".join(e.summary for e in events(stack, rollback_id))
        assert row.state == "done", said
        assert "dry run: rolled back HelmRelease/" in said
        assert "helm rollback --dry-run" in said
    assert _summary(helm.history(release)) == before
    bot = KubeApis(api_client_from_env(str(cp.kubeconfig_path)))
    assert [r.number for r in read_history(bot, namespace, release)] == [1, 2]


def test_helm_refused_by_rbac_fails_the_rollback_with_helms_words(
    arranged: tuple[RealControlPlane, Helm, str, str, str], migrated_url: str, tmp_path: Path
) -> None:
    """Without the rights on the chart's Deployments, helm rollback is refused: the rollback
    fails with what helm and the apiserver said, and Helm's own record of it."""
    cp, helm, namespace, release, _ = arranged
    _bind_helm_role(cp, namespace, without="deployments")
    with _stack(cp, tmp_path, migrated_url, namespace, release) as stack:
        rollback_id = request(stack, "checkout")
        wait_state(stack, rollback_id, "requested")
        click(stack, action_ids.APPROVE, user=BOB)
        row = wait_state(stack, rollback_id, "failed", "done")
        said = "; ".join(e.summary for e in events(stack, rollback_id))
        assert row.state == "failed", said
        assert f"helm rollback {release} 1 -n {namespace} failed (exit 1)" in said, said
        assert 'User "rollback-bot" cannot' in said and "deployments" in said, said
        assert "the release is now at revision 3" in said, said
        assert "Traceback" not in said
    assert [(h["revision"], h["status"]) for h in helm.history(release)][-1] == (3, "failed")
