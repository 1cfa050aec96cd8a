"""The whole loop on loopback: Kubernetes emulator, Slack stand-in, and the bot.

Tests, the demo and the benchmarks all stand on this, so they exercise the
same wiring as ``rollback-bot serve``: the real composition root, the real
bolt app behind waitress, signed requests over HTTP, the official Kubernetes
client talking to the emulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests
from kubernetes import utils
from pydantic import SecretStr

from rollback_bot.app import ServerThread, build, slack_client
from rollback_bot.catalog import Catalog, parse_catalog
from rollback_bot.clock import Clock
from rollback_bot.config import Settings
from rollback_bot.kube.client import KubeApis
from rollback_bot.services import Services
from rollback_bot.storage.migrator import migrate
from rollback_bot.web.http import create_web_app
from rollback_bot.web.slack_app import create_bolt_app
from sandbox.kube import KubeEmulator
from sandbox.slack import SlackDriver, SlackStandIn

SIGNING_SECRET = "sandbox-signing-secret"
# Alerts act (trigger rules, countdowns) only when authenticated: the stack is by default.
ALERT_TOKEN = "sandbox-alert-token"
BOT_TOKEN = "xoxb-sandbox"
APP_TOKEN = "xapp-sandbox"


def deployment_manifest(
    name: str,
    image: str,
    *,
    replicas: int = 2,
    history: int = 10,
    configmap: str | None = None,
    labels: dict[str, str] | None = None,
    progress_deadline: int = 600,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if configmap:
        container["envFrom"] = [{"configMapRef": {"name": configmap}}]
    pod_labels = {"app": name, **(labels or {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": history,
            "progressDeadlineSeconds": progress_deadline,
            "selector": {"matchLabels": pod_labels},
            "template": {"metadata": {"labels": pod_labels}, "spec": {"containers": [container]}},
        },
    }


class LoopbackStack:
    def __init__(
        self,
        *,
        catalog: Catalog | dict[str, Any],
        database_url: str,
        ready_delay: float = 0.2,
        clock: Clock | None = None,
        alert_token: str = ALERT_TOKEN,
        users: dict[str, Any] | None = None,
        usergroups: dict[str, list[str]] | None = None,
        slack_channel_rate: float = 1.0,
        slack_work_threads: int | None = None,
    ) -> None:
        self.catalog = catalog if isinstance(catalog, Catalog) else parse_catalog(catalog)
        self.database_url = database_url
        self.alert_token = alert_token
        self.slack_channel_rate = slack_channel_rate
        self.slack_work_threads = slack_work_threads  # None: the setting's default
        self._clock = clock
        self.kube = KubeEmulator(ready_delay=ready_delay)
        self.slack = SlackStandIn(
            bot_token=BOT_TOKEN, app_token=APP_TOKEN, users=users, usergroups=usergroups
        )
        self.services: Services | None = None
        self._server: ServerThread | None = None
        self.http = requests.Session()

    # -- lifecycle -------------------------------------------------------------------
    def start(self, *, bot: bool = True) -> LoopbackStack:
        self.kube.start()
        self.slack.start()
        migrate(self.database_url)
        if bot:
            self.start_bot()
        return self

    def settings(self) -> Settings:
        return Settings(
            slack_bot_token=SecretStr(BOT_TOKEN),
            slack_signing_secret=SecretStr(SIGNING_SECRET),
            slack_app_token=SecretStr(APP_TOKEN),
            slack_api_url=self.slack.url,
            database_url=self.database_url,
            alert_webhook_token=SecretStr(self.alert_token),
            slack_channel_rate=self.slack_channel_rate,
            **(
                {"slack_work_threads": self.slack_work_threads}
                if self.slack_work_threads is not None
                else {}
            ),
        )

    def start_bot(self) -> None:
        settings = self.settings()
        self.services = build(
            settings,
            catalog=self.catalog,
            clock=self._clock,
            kube=KubeApis(self.kube.api_client()),
            slack=slack_client(settings),
        )
        web = create_web_app(self.services, create_bolt_app(self.services))
        self.services.start()
        self._server = ServerThread(web).start()

    def stop_bot(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self.services is not None:
            self.services.stop()
            self.services = None

    def stop(self) -> None:
        self.stop_bot()
        self.slack.stop()
        self.kube.stop()
        self.http.close()

    def __enter__(self) -> LoopbackStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- talking to the bot ------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "bot not started"
        return self._server.url

    @property
    def driver(self) -> SlackDriver:
        return SlackDriver(
            events_url=f"{self.url}/slack/events", signing_secret=SIGNING_SECRET, standin=self.slack
        )

    def post_alert(
        self, source: str, payload: Any, *, token: str | None = None
    ) -> requests.Response:
        headers = {}
        token = self.alert_token if token is None else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.post(
            f"{self.url}/alerts/{source}", json=payload, headers=headers, timeout=10
        )

    # -- the cluster -------------------------------------------------------------------
    def apis(self) -> KubeApis:
        return KubeApis(self.kube.api_client())

    def ns(self, logical: str) -> str:
        """The namespace a test's logical name stands for: here the name itself (a stack on
        a shared cluster answers a fresh one per test)."""
        return logical

    def create(self, namespace: str, obj: dict[str, Any]) -> None:
        """Create any object from its manifest (``kubectl create -f``), and the namespace."""
        apis = self.apis()
        if self.kube.get("namespaces", "", namespace) is None:
            apis.core.create_namespace({"metadata": {"name": namespace}})
        utils.create_from_dict(apis.api_client, obj, namespace=namespace)

    def deploy(self, namespace: str, manifest: dict[str, Any]) -> None:
        apis = self.apis()
        if self.kube.get("namespaces", "", namespace) is None:
            apis.core.create_namespace({"metadata": {"name": namespace}})
        apis.apps.create_namespaced_deployment(namespace, manifest)

    def set_image(self, namespace: str, name: str, image: str) -> None:
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
        self.apis().apps.patch_namespaced_deployment(name, namespace, patch)

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        found = self.kube.get("deployments", namespace, name)
        assert found is not None, f"no deployment {namespace}/{name}"
        return found

    def wait_available(self, namespace: str, name: str, timeout: float = 10) -> None:
        """Until the controller has seen the latest spec and every replica of it is up."""

        def available() -> bool:
            deployment = self.deployment(namespace, name)
            status, spec = deployment.get("status", {}), deployment["spec"]
            return (
                status.get("observedGeneration") == deployment["metadata"].get("generation")
                and status.get("updatedReplicas") == spec["replicas"]
                and status.get("availableReplicas") == spec["replicas"]
                and status.get("replicas") == spec["replicas"]
            )

        self.kube.wait_for(available, timeout)


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until ``predicate`` returns something truthy; return it or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)
