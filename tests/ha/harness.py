"""Two ``rollback-bot serve`` replicas on one PostgreSQL database and a real control plane.

Shared by tests/ha and bench/failover.py. The replicas elect a leader on a Lease in the
test's namespace with short settings; Slack is the stand-in, Alertmanager a stand-in
with nothing firing (so health gates pass). Requests go to whichever replica the caller
picks; the database and the API server's audit log are read only to observe.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import utils
from sqlalchemy import Engine, select

from rollback_bot.slack.ui import action_ids
from rollback_bot.storage import db
from rollback_bot.storage.models import Rollback, TimelineEvent
from sandbox.realk8s import RealControlPlane, iter_audit
from sandbox.slack.driver import SlackDriver
from sandbox.slack.standin import SlackStandIn
from sandbox.stack import ALERT_TOKEN, BOT_TOKEN, SIGNING_SECRET, deployment_manifest, wait_until
from tests.e2e.execute_support import FakeAlertmanager

ALICE = "U0ALICE"
CHANNEL = "C0HA"
#: Short lease settings: duration / renew deadline / retry period, seconds.
LEASE = (3.0, 2.0, 0.5)
STEP_SECONDS = 1.0
COUNTDOWN_SECONDS = 10
GRADUAL = ["shopfront", "cart", "basket", "pay", "ship"]
WAIT = 60.0
START_TIMEOUT = 90.0


def gradual_service(name: str, common: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "deployment": name,
        "match": {"service": name},
        "strategy": "gradual",
        "gradual": {"stable": name, "canary": f"{name}-canary", "step_seconds": STEP_SECONDS},
        **common,
    }


def catalog(namespace: str, alertmanager_url: str, *, gradual: int = 1) -> dict[str, Any]:
    health = {"timeout_seconds": 30, "wait_seconds": 0, "alertmanager_url": alertmanager_url}
    common = {
        "namespace": namespace,
        "environment": "staging",
        "channel": CHANNEL,
        "policy": {"requesters": {"users": [ALICE]}, "approvers": {"users": [ALICE]}},
        "health": health,
        "stable_window_seconds": 0,
    }
    return {
        "services": [
            *(gradual_service(GRADUAL[i], common) for i in range(gradual)),
            {
                "name": "search",
                "deployment": "search",
                "match": {"service": "search"},
                **common,
                "policy": {**common["policy"], "automation": True},  # type: ignore[dict-item]
                "triggers": [
                    {
                        "name": "errors-critical",
                        "alert": "HighErrorRate",
                        "severity": "critical",
                        "countdown_seconds": COUNTDOWN_SECONDS,
                    }
                ],
            },
        ]
    }


class Replica:
    """One ``serve`` process, its output in files."""

    def __init__(self, env: dict[str, str], logs: Path, name: str) -> None:
        self.name = name
        self.stdout = logs / f"{name}.out"
        self.stderr = logs / f"{name}.err"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rollback_bot.cli", "serve", "--host", "127.0.0.1"],
                env={**env, "POD_NAME": name},
                stdout=out,
                stderr=err,
            )
        self.url = ""

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def _listening(self) -> bool:
        for line in self.stdout.read_text().splitlines():
            if line.startswith("rollback-bot listening on "):
                self.url = line.removeprefix("rollback-bot listening on ").strip()
                return True
        return False

    def wait_listening(self) -> str:
        def seen() -> str | None:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited {self.process.returncode}:\n{self.output()}"
                )
            for line in self.stdout.read_text().splitlines():
                if line.startswith("rollback-bot listening on "):
                    return line.removeprefix("rollback-bot listening on ").strip()
            return None

        self.url = str(wait_until(seen, timeout=START_TIMEOUT, interval=0.05))
        return self.url

    def alive(self) -> bool:
        return self.process.poll() is None

    def leading(self) -> bool:
        if not self.alive() or not (self.url or self._listening()):
            return False
        try:
            text = requests.get(f"{self.url}/metrics", timeout=5).text
        except requests.RequestException:
            return False
        return any(line.strip() == "rollback_bot_leader 1.0" for line in text.splitlines())

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lease given up, nothing flushed."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@dataclass
class Kill:
    at: float  # time.monotonic() of the SIGKILL
    wall: float  # the same instant, epoch seconds (to compare with timeline times)
    victim: str
    successor: str


class Replicas:
    def __init__(
        self, plane: RealControlPlane, database_url: str, workdir: Path, *, gradual: int = 1
    ) -> None:
        self.plane = plane
        self.database_url = database_url
        self.workdir = workdir
        self.api_client = k8s_config.new_client_from_config(
            config_file=str(plane.kubeconfig_path), context="admin"
        )
        self.namespace = f"ha-{os.urandom(4).hex()}"
        k8s.CoreV1Api(self.api_client).create_namespace({"metadata": {"name": self.namespace}})  # type: ignore[arg-type]
        self.slack = SlackStandIn(bot_token=BOT_TOKEN).start()
        self.alertmanager = FakeAlertmanager().start()
        db.migrate(database_url)
        self.engine: Engine = db.make_engine(database_url)
        cat = workdir / "catalog.yaml"
        services = catalog(self.namespace, self.alertmanager.url, gradual=gradual)
        cat.write_text(yaml.safe_dump(services))
        duration, deadline, period = LEASE
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "ROLLBACK_BOT_", "ALERT_", "KUBE", "LEADER_", "POD_"))
        }
        self.env.update(
            SLACK_API_URL=self.slack.url,
            SLACK_CHANNEL_RATE="50",
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            ALERT_WEBHOOK_TOKEN=ALERT_TOKEN,
            DATABASE_URL=database_url,
            ROLLBACK_BOT_CATALOG=str(cat),
            KUBECONFIG=str(plane.kubeconfig_path),
            PORT="0",
            PYTHONUNBUFFERED="1",
            HOME=str(workdir),
            LEADER_ELECTION="true",
            LEADER_ELECTION_NAMESPACE=self.namespace,
            LEADER_ELECTION_LEASE_DURATION=str(duration),
            LEADER_ELECTION_RENEW_DEADLINE=str(deadline),
            LEADER_ELECTION_RETRY_PERIOD=str(period),
        )
        self.replicas: list[Replica] = []
        self._born = 0
        self.kills: list[Kill] = []

    # -- replicas ------------------------------------------------------------------------
    def spawn(self, *, wait: bool = True) -> Replica:
        self._born += 1
        replica = Replica(self.env, self.workdir, f"replica-{self._born}")
        self.replicas.append(replica)
        if wait:
            replica.wait_listening()
        return replica

    def live(self) -> list[Replica]:
        return [r for r in self.replicas if r.alive()]

    def leader(self, timeout: float = WAIT) -> Replica:
        found: Replica = wait_until(
            lambda: next((r for r in self.live() if r.leading()), None), timeout=timeout
        )
        return found

    def follower(self) -> Replica:
        """A live replica that does not lead (waiting for a new one to listen)."""
        leader = self.leader()
        replica = next(r for r in self.live() if r is not leader)
        if not replica.url:
            replica.wait_listening()
        return replica

    def ready(self) -> None:
        """Wait until every live replica listens (and so campaigns for the lease)."""
        for replica in self.live():
            if not replica.url:
                replica.wait_listening()

    def kill_leader(self) -> Kill:
        """SIGKILL the leader, start a fresh replica, and wait for the survivor to lead.

        Only once every other replica is up and campaigning, so that the time to take
        over is the election's, not a process start's.
        """
        self.ready()
        victim = self.leader()
        victim.kill()
        at = time.monotonic()
        successor = self.leader()
        kill = Kill(at, time.time() - (time.monotonic() - at), victim.name, successor.name)
        self.kills.append(kill)
        self.spawn(wait=False)  # two replicas again for the next kill; it joins when up
        return kill

    def stop(self) -> None:
        for replica in self.replicas:
            replica.terminate()
        self.slack.stop()
        self.alertmanager.stop()
        self.engine.dispose()
        self.api_client.close()

    def logs(self) -> str:
        return "\n".join(f"--- {r.name}\n{r.output()[-3000:]}" for r in self.replicas)

    # -- the cluster ---------------------------------------------------------------------
    def create(self, obj: dict[str, Any]) -> None:
        utils.create_from_dict(self.api_client, obj, namespace=self.namespace)

    def settled(self, name: str) -> None:
        apps = k8s.AppsV1Api(self.api_client)

        def done() -> bool:
            d = apps.read_namespaced_deployment(name, self.namespace)
            s = d.status
            want = d.spec.replicas
            return bool(
                s.observed_generation == d.metadata.generation
                and (s.available_replicas or 0) == want
                and (s.updated_replicas or 0) == want
            )

        wait_until(done, timeout=WAIT, interval=0.2)

    def release_gradual(self, service: str = "shopfront") -> None:
        for name, image, track in (
            (service, f"registry.local/{service}:v1", "stable"),
            (f"{service}-canary", f"registry.local/{service}:v2", "canary"),
        ):
            self.create(deployment_manifest(name, image, replicas=5, labels={"track": track}))
        self.settled(service)
        self.settled(f"{service}-canary")

    def release_instant(self) -> None:
        self.create(deployment_manifest("search", "registry.local/search:v1"))
        self.settled("search")
        apps = k8s.AppsV1Api(self.api_client)
        patch = {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "registry.local/search:v2"}]}}}}  # fmt: skip
        apps.patch_namespaced_deployment("search", self.namespace, patch)
        self.settled("search")

    def canary_writes(self, service: str = "shopfront") -> list[int]:
        """The replica counts written to the canary, as the API server's audit log has them."""
        found = []
        for event in iter_audit(
            self.plane.audit_events(),
            verb="patch",
            **{"objectRef.namespace": self.namespace, "objectRef.name": f"{service}-canary"},
        ):
            if event["responseStatus"]["code"] != 200 or "dryRun" in event.get("requestURI", ""):
                continue
            body = event.get("requestObject") or {}
            replicas = (body.get("spec") or {}).get("replicas")
            if replicas is not None:
                found.append(int(replicas))
        return found

    # -- Slack and alerts, through a replica ---------------------------------------------
    def driver(self, replica: Replica) -> SlackDriver:
        return SlackDriver(
            events_url=f"{replica.url}/slack/events",
            signing_secret=SIGNING_SECRET,
            standin=self.slack,
        )

    def request(self, replica: Replica, service: str) -> int:
        before = self.latest_rollback_id() or 0
        seen = len(self.slack.views)
        driver = self.driver(replica)
        assert driver.command(service, user_id=ALICE, channel_id=CHANNEL).status_code == 200
        update = wait_until(
            lambda: next((v for v in self.slack.views[seen:] if v["op"] == "update"), None),
            timeout=WAIT,
        )
        modal = update["view"]
        assert modal["callback_id"] == action_ids.REQUEST_MODAL, json.dumps(modal)[:500]
        resp = driver.submit_view(
            callback_id=action_ids.REQUEST_MODAL,
            user_id=ALICE,
            private_metadata=modal["private_metadata"],
            values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "failover test"}},
        )
        assert resp.status_code == 200
        return int(wait_until(lambda: (self.latest_rollback_id() or 0) > before and
                              self.latest_rollback_id(), timeout=WAIT))  # fmt: skip

    def alert(self, replica: Replica, service: str) -> requests.Response:
        labels = {"alertname": "HighErrorRate", "service": service, "severity": "critical"}
        payload = {
            "version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "rollback-bot",
            "groupLabels": {"alertname": "HighErrorRate"}, "commonLabels": labels,
            "commonAnnotations": {}, "externalURL": "http://alertmanager.local",
            "alerts": [{
                "status": "firing", "labels": labels, "annotations": {"summary": "5xx"},
                "startsAt": "2026-12-01T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.local", "fingerprint": f"fp-{service}",
            }],
        }  # fmt: skip
        return requests.post(
            f"{replica.url}/alerts/alertmanager",
            json=payload,
            headers={"Authorization": f"Bearer {ALERT_TOKEN}"},
            timeout=10,
        )

    def resume_if_paused(self, replica: Replica, rollback_id: int) -> bool:
        """Click Resume (through ``replica``) if the rollback paused; whether it had."""
        if self.rollback(rollback_id)["state"] != "paused":
            return False

        def find() -> tuple[dict[str, Any], dict[str, Any]] | None:
            for message in reversed(self.slack.messages(CHANNEL)):
                for block in message.get("blocks") or []:
                    if block.get("type") != "actions":
                        continue
                    for element in block.get("elements", []):
                        if element.get("action_id") == action_ids.RESUME:
                            return message, element
            return None

        message, button = self.wait_for(find)
        resp = self.driver(replica).click(
            action_id=action_ids.RESUME,
            value=button["value"],
            user_id=ALICE,
            channel_id=CHANNEL,
            message_ts=message["ts"],
        )
        assert resp.status_code == 200
        self.wait_for(lambda: self.rollback(rollback_id)["state"] != "paused")
        return True

    # -- the database --------------------------------------------------------------------
    def latest_rollback_id(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.scalar(select(Rollback.id).order_by(Rollback.id.desc()).limit(1))

    def rollback(self, rollback_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(Rollback).where(Rollback.id == rollback_id)).mappings().one()
            return dict(row)

    def events(self, rollback_id: int) -> list[tuple[str, str, datetime]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(TimelineEvent.kind, TimelineEvent.summary, TimelineEvent.at)
                .where(TimelineEvent.rollback_id == rollback_id)
                .order_by(TimelineEvent.id)
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def kinds(self, rollback_id: int) -> list[str]:
        return [k for k, _, _ in self.events(rollback_id)]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = WAIT) -> Any:
        try:
            return wait_until(predicate, timeout=timeout, interval=0.05)
        except TimeoutError:
            raise AssertionError(f"timed out; replicas said:\n{self.logs()}") from None

    def wait_kind(self, rollback_id: int, kind: str, count: int = 1) -> None:
        self.wait_for(lambda: self.kinds(rollback_id).count(kind) >= count)

    def wait_over(self, rollback_id: int) -> str:
        over = ("done", "paused", "failed", "aborted")
        state: str = self.wait_for(lambda: (s := self.rollback(rollback_id)["state"]) in over and s)
        return state
