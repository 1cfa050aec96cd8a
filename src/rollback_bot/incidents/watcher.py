"""Notices Deployments changed outside the bot while an incident is open.

During an incident people reach for ``kubectl`` too. A rollout undo or an image
change made by hand while the bot believes it knows the state is exactly the
kind of surprise that turns one incident into two, so the bot watches the
Deployments of its catalog (one watch per namespace) and, when a pod template
changes while the service has an open incident and no rollback of the bot is
writing to it, says so in the incident's thread and records it on the
timeline.

A change counts as the bot's own while one of its rollbacks of that service is
approved, executing or verifying, and for a short grace period after, so that
a watch event that arrives late is not mistaken for a person's change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from rollback_bot.catalog import Catalog, Service
from rollback_bot.clock import Clock
from rollback_bot.kube.client import KubeApis
from rollback_bot.rollbacks.lifecycle import State
from rollback_bot.storage.models import Incident, Rollback
from rollback_bot.storage.uow import UnitOfWorkFactory
from rollback_bot.timeline import TimelineKind

log = logging.getLogger(__name__)

WRITING_STATES = (State.APPROVED, State.EXECUTING, State.VERIFYING)
OWN_WRITE_GRACE = timedelta(seconds=5)
WATCH_SECONDS = 300  # the server ends each watch; it is resumed from the last version
RETRY_SECONDS = 1.0
DEPLOYMENTS = "/apis/apps/v1/namespaces/{namespace}/deployments"

Post = Callable[[Incident, Rollback | None, str], None]


def deployments_of(service: Service) -> tuple[str, ...]:
    """Every Deployment whose template belongs to ``service``."""
    names = [service.deployment] if service.deployment else []  # none for a Rollout
    if service.gradual is not None:
        names += [service.gradual.stable, service.gradual.canary]
    if service.blue_green is not None:
        names += list(service.blue_green.slots.values())
    return tuple(dict.fromkeys(names))


def template_digest(deployment: dict[str, Any]) -> str:
    template = (deployment.get("spec") or {}).get("template") or {}
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


def template_images(deployment: dict[str, Any]) -> list[str]:
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [str(c.get("image")) for c in spec.get("containers") or []]


class DeploymentWatcher:
    """One daemon thread per namespace; ``start``/``stop`` with the bot."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        apis: KubeApis,
        uow: UnitOfWorkFactory,
        clock: Clock,
        post: Post,
        by_cluster: Callable[[str | None], KubeApis] | None = None,
    ) -> None:
        self._catalog = catalog
        # A service on a named cluster is watched there (None: the default client).
        self._by_cluster = by_cluster or (lambda _cluster: apis)
        self._uow = uow
        self._clock = clock
        self._post = post
        # (cluster, namespace, deployment) -> its service; cluster None is the default one
        self._owners: dict[tuple[str | None, str, str], Service] = {}
        for service in catalog.services:
            if service.target_kind != "deployment":
                continue
            for name in deployments_of(service):
                self._owners[(service.cluster, service.namespace, name)] = service
        self._digests: dict[tuple[str | None, str, str], str] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._responses: dict[tuple[str | None, str], Any] = {}
        self._lock = threading.Lock()
        self.ready = threading.Event()  # set once every namespace has been listed
        self.expired = 0  # watches the server ended as too old ("410 Expired"): each relisted
        self._listed = 0

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()  # started again when this replica leads again
        places = sorted({(c, ns) for c, ns, _ in self._owners}, key=lambda p: (p[0] or "", p[1]))
        if not places:
            self.ready.set()
        for cluster, ns in places:
            name = f"watch-{ns}" + (f"@{cluster}" if cluster else "")
            thread = threading.Thread(
                target=self._run, args=(cluster, ns, len(places)), name=name, daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            responses = list(self._responses.values())
        for resp in responses:  # unblock a read waiting on the stream
            try:
                resp.shutdown()
            except Exception:
                log.debug("closing a watch stream failed", exc_info=True)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def digest_seen(self, namespace: str, name: str, cluster: str | None = None) -> str | None:
        """The template digest of the last event seen for a Deployment (None: none yet)."""
        return self._digests.get((cluster, namespace, name))

    # -- the watch loop ----------------------------------------------------------------
    def _run(self, cluster: str | None, ns: str, total: int) -> None:
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list(cluster, ns)
                    with self._lock:
                        self._listed += 1
                        if self._listed >= total:
                            self.ready.set()
                version = self._watch(cluster, ns, version)
            except Exception as exc:
                if self._stop.is_set():
                    return
                where = ns + (f" @{cluster}" if cluster else "")
                log.warning("watching deployments in %s failed: %r; relisting", where, exc)
                version = None
                self._stop.wait(RETRY_SECONDS)

    def _list(self, cluster: str | None, ns: str) -> str:
        resp: Any = self._by_cluster(cluster).get_raw(DEPLOYMENTS, {"namespace": ns})
        body = json.loads(resp.data)
        for item in body.get("items") or []:
            key = (cluster, ns, item["metadata"]["name"])
            if key in self._owners:
                self._digests[key] = template_digest(item)
        return str(body.get("metadata", {}).get("resourceVersion") or "")

    def _watch(self, cluster: str | None, ns: str, version: str) -> str | None:
        # The raw stream (not kubernetes.watch) so that stop() can shut its socket down.
        resp: Any = self._by_cluster(cluster).get_raw(
            DEPLOYMENTS,
            {"namespace": ns},
            {"watch": True, "resourceVersion": version, "timeoutSeconds": WATCH_SECONDS},
        )
        with self._lock:
            self._responses[(cluster, ns)] = resp
        try:
            buffer = b""
            for chunk in resp.stream(4096, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        event = json.loads(line)
                        if event.get("type") == "ERROR":
                            # A version compacted away or out of the watch cache: the
                            # server answers 200 and this event (410 Expired); list again.
                            status = event.get("object") or {}
                            log.info(
                                "watch of deployments in %s from version %s ended: %s %s; "
                                "listing again",
                                ns,
                                version,
                                status.get("code"),
                                status.get("message"),
                            )
                            self.expired += 1
                            return None
                        version = self._on_event(cluster, ns, event) or version
                if self._stop.is_set():
                    break
        finally:
            with self._lock:
                self._responses.pop((cluster, ns), None)
            resp.release_conn()
        return version

    def _on_event(self, cluster: str | None, ns: str, event: dict[str, Any]) -> str | None:
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        key = (cluster, ns, str(meta.get("name")))
        if event.get("type") not in ("ADDED", "MODIFIED") or key not in self._owners:
            return meta.get("resourceVersion")
        digest = template_digest(obj)
        before = self._digests.get(key)
        self._digests[key] = digest
        if before is not None and before != digest:
            try:
                self.template_changed(self._owners[key], key[2], obj)
            except Exception:
                log.exception("recording a manual change of %s/%s failed", ns, key[2])
        return meta.get("resourceVersion")

    # -- deciding ------------------------------------------------------------------------
    def template_changed(self, service: Service, name: str, obj: dict[str, Any]) -> None:
        """Record and post the change unless the bot made it or no incident is open."""
        now = self._clock.now()
        with self._uow() as uow:
            incident = uow.incidents.open_for_service(service=service.name)
            if incident is None:
                return
            rollbacks = uow.rollbacks.list_for_incident(incident_id=incident.id)
            if any(_writing(r, now) for r in rollbacks):
                return
            revision = (obj["metadata"].get("annotations") or {}).get(
                "deployment.kubernetes.io/revision", "?"
            )
            images = ", ".join(template_images(obj))
            where = f" @{service.cluster}" if service.cluster else ""
            summary = (
                f"deployment {service.namespace}/{name}{where} was changed outside the bot "
                f"(now revision {revision}, {images})"
            )
            uow.timeline.append(
                at=now,
                actor="kubernetes",
                kind=TimelineKind.KUBE_MANUAL_CHANGE,
                summary=summary,
                incident_id=incident.id,
                rollback_id=None,
                service=service.name,
                data={
                    "namespace": service.namespace,
                    "deployment": name,
                    "cluster": service.cluster,
                    "images": template_images(obj),
                    "generation": obj["metadata"].get("generation"),
                    "resource_version": obj["metadata"].get("resourceVersion"),
                },
            )
            uow.commit()
            latest = rollbacks[-1] if rollbacks else None
        self._post(incident, latest, f":warning: {summary}")


def _writing(row: Rollback, now: datetime) -> bool:
    if row.drill:
        return False  # a drill writes nothing
    if row.state in WRITING_STATES:
        return True
    finished = row.finished_at or row.updated_at
    return finished is not None and now - finished < OWN_WRITE_GRACE


def thread_poster(notifier: Any, uow: UnitOfWorkFactory) -> Post:
    """Post into the incident's thread: its latest rollback's, else its alert group's."""

    def post(incident: Incident, latest: Rollback | None, line: str) -> None:
        if latest is not None and latest.channel:
            notifier.progress(latest, line)
            return
        with uow(read_only=True) as u:
            groups = u.alert_groups.list_for_incident(incident_id=incident.id)
        if groups:
            notifier.group_progress(groups[-1], line)

    return post
