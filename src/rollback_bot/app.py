"""The composition root: the one place where the bot's parts are built and wired.

Everything with I/O (database, Slack Web API, Kubernetes API, clock) is created
here from the settings, or passed in by a test, and handed to the services
through their constructors. Handlers get the finished bundle,
``rollback_bot.services.Services``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import replace
from typing import Any

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy.engine import make_url

from rollback_bot import redaction
from rollback_bot.alerts.automation import Automation
from rollback_bot.alerts.poller import QueryPoller
from rollback_bot.alerts.relay import AlertRelay
from rollback_bot.catalog import Catalog, Service, load_catalog
from rollback_bot.clock import Clock, SystemClock
from rollback_bot.config import Settings
from rollback_bot.executors.base import Executor, Plan
from rollback_bot.executors.health import HealthGate
from rollback_bot.executors.helm_cli import HelmCli
from rollback_bot.executors.routing import TargetRouter
from rollback_bot.executors.snapshot_store import DbSnapshotStore
from rollback_bot.incidents import lifecycle as incident_lifecycle
from rollback_bot.incidents.notes import IncidentNotes
from rollback_bot.incidents.queries import Queries
from rollback_bot.incidents.watcher import DeploymentWatcher, thread_poster
from rollback_bot.integrations.alertmanager import AlertmanagerClient
from rollback_bot.integrations.prometheus import PrometheusClient
from rollback_bot.kube.client import KubeApis, api_client_from_env
from rollback_bot.kube.clusters import Clusters, cluster_names
from rollback_bot.kube.events import EventRecorder
from rollback_bot.kube.lease import LeaseElector
from rollback_bot.kube.model import ExecutionError
from rollback_bot.kube.revisions import Revision
from rollback_bot.kube.workloads import service_revisions
from rollback_bot.leadership import ScheduledWork, Work, election_settings
from rollback_bot.metrics import Metrics
from rollback_bot.rollbacks.drift import Seen
from rollback_bot.rollbacks.flags import FlagService
from rollback_bot.rollbacks.gitops import GitOpsPauser, GitOpsService, with_gitops
from rollback_bot.rollbacks.lifecycle import Decision, Move
from rollback_bot.rollbacks.model import EffectSink, RequestSpec
from rollback_bot.rollbacks.runner import Runner
from rollback_bot.rollbacks.service import RollbackService
from rollback_bot.rollbacks.targets import (
    REVISION_STRATEGIES,
    ReleaseMarks,
    Targets,
    check_target,
)
from rollback_bot.services import Services
from rollback_bot.slack.commands import ambiguous_revision, unknown_revision
from rollback_bot.slack.conversations import Conversations
from rollback_bot.slack.directory import GroupDirectory
from rollback_bot.slack.notifier import SlackNotifier
from rollback_bot.slack.outbox import Outbox
from rollback_bot.slack.permalink import slack_permalink
from rollback_bot.slack.presenter import Presenter, RevisionCache
from rollback_bot.slack.transport import KeptAliveWebClient
from rollback_bot.slack.undelivered import UndeliveredRecorder
from rollback_bot.storage.engine import make_engine
from rollback_bot.storage.housekeeping import IdempotencyPurge
from rollback_bot.storage.migrator import ensure_up_to_date
from rollback_bot.storage.models import Rollback
from rollback_bot.storage.pacing import SharedPacing
from rollback_bot.storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)


def slack_client(settings: Settings) -> WebClient:
    """A Web API client that retries 429s after Retry-After, 5xx and dropped connections.

    It keeps its connections to Slack open between calls (urllib3's pool).
    """
    return KeptAliveWebClient(
        token=settings.slack_bot_token.get_secret_value() or None,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


class _CountedEffects:
    """Every decision passes here on its way to the runner: count the states reached."""

    def __init__(self, inner: EffectSink, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def carry_out(self, rollback: Rollback, decision: Decision) -> None:
        if decision.move is Move.REQUEST or decision.before is not decision.after:
            self._metrics.rollbacks.labels(state=decision.after.value).inc()
        self._inner.carry_out(rollback, decision)


class _Fanout:
    """The relay has one listener; Slack and automation both need to hear."""

    def __init__(self, *listeners: Any) -> None:
        self._listeners = listeners

    def group_changed(self, group: Any) -> None:
        for listener in self._listeners:
            listener.group_changed(group)

    def group_resolved(self, group: Any) -> None:
        for listener in self._listeners:
            if hasattr(listener, "group_resolved"):
                listener.group_resolved(group)

    def triggered(self, service: Any, alert: Any, decision: Any) -> None:
        for listener in self._listeners:
            if hasattr(listener, "triggered"):
                listener.triggered(service, alert, decision)


def _patterns(setting: str) -> list[str] | None:
    """A comma-separated setting; None (the defaults) when empty."""
    parts = [p.strip() for p in setting.split(",") if p.strip()]
    return parts or None


def _own_secrets(settings: Settings) -> list[str]:
    """The bot's own secret values: every ``SecretStr`` setting and the database password."""
    values = [v.get_secret_value() for v in settings.__dict__.values() if isinstance(v, SecretStr)]
    with contextlib.suppress(Exception):  # an unparsable URL is refused later, by the engine
        password = make_url(settings.database_url).password
        if password:
            values.append(str(password))
    return [v for v in values if v]


def build(
    settings: Settings,
    *,
    catalog: Catalog | None = None,
    clock: Clock | None = None,
    kube: KubeApis | None = None,
    slack: WebClient | None = None,
    require_migrated: bool = True,
    clusters: Clusters | None = None,
) -> Services:
    redaction.configure(
        _patterns(settings.redact_name_patterns),
        _patterns(settings.redact_value_patterns),
        literals=_own_secrets(settings),
    )
    catalog = catalog or load_catalog(settings.catalog_path)
    clock = clock or SystemClock()
    engine = make_engine(settings.database_url)
    if require_migrated:
        ensure_up_to_date(engine)
    uow = UnitOfWorkFactory(engine)
    slack = slack or slack_client(settings)
    kube = kube or (
        clusters.default if clusters else KubeApis(api_client_from_env(settings.kubeconfig))
    )
    # One client per cluster the catalog names (kubeconfig contexts), every one loaded now.
    clusters = clusters or Clusters.load(
        kube, cluster_names(catalog.services), kubeconfig=settings.kubeconfig
    )

    def read_revisions(service: Service) -> list[Revision]:
        return service_revisions(clusters.for_service(service), service)

    metrics = Metrics()
    outbox = Outbox(
        slack,
        rate_per_second=settings.slack_channel_rate,
        on_error=UndeliveredRecorder(uow=uow, clock=clock, metrics=metrics),
        # Replicas share each channel's pace through the database.
        pacer=SharedPacing(engine, rate_per_second=settings.slack_channel_rate)
        if settings.leader_election
        else None,
    )
    directory = GroupDirectory(slack, clock)
    targets = Targets(
        uow=uow,
        clock=clock,
        read_revisions=read_revisions,
    )
    presenter = Presenter(
        catalog=catalog,
        uow=uow,
        clock=clock,
        revisions=RevisionCache(kube, read=read_revisions),
        targets=targets,
    )
    notifier = SlackNotifier(outbox=outbox, presenter=presenter, uow=uow, clock=clock)
    # One client per outside system, shared by everything that talks to it.
    alertmanager = AlertmanagerClient()
    prometheus = PrometheusClient()
    gate = HealthGate(
        apis=kube,
        alertmanager_url=catalog.alertmanager_url,
        alertmanager=alertmanager,
        prometheus=prometheus,
        now=clock.now,
        apis_for=clusters.for_service,
    )
    snapshots = DbSnapshotStore(uow, catalog, clock)

    helm = HelmCli(binary=settings.helm_bin, kubeconfig=settings.kubeconfig)
    routers: dict[str, TargetRouter] = {}

    # The executors' modules (a dozen, with the workload code they use) are loaded when
    # the first rollback is planned or resumed, not at start: 30-40 ms of every start-up.
    def make(strategy: str, service: Service, apis: KubeApis) -> Executor:
        """The executor for the service's target, on the service's cluster."""
        from rollback_bot.executors.argo_rollout import STRATEGY as ROLLOUT
        from rollback_bot.executors.argo_rollout import RolloutExecutor
        from rollback_bot.executors.flag import FlagSwitch
        from rollback_bot.executors.flag_rollback import FlagExecutor
        from rollback_bot.executors.registry import executor_for_target

        if strategy == "flag":
            return FlagExecutor(FlagSwitch(apis))
        if strategy == ROLLOUT:
            return RolloutExecutor(apis)
        # helm talks to the cluster itself: the same kubeconfig context as the client.
        cli = replace(helm, context=service.cluster) if service.cluster else helm
        kind = service.target_kind
        return executor_for_target(strategy, kind=kind, apis=apis, snapshots=snapshots, helm=cli)

    def executor(strategy: str) -> Executor:
        """The strategy's executor, sending each service to its target kind and cluster."""
        if strategy not in routers:
            routers[strategy] = TargetRouter(strategy, apis_for=clusters.for_service, make=make)
        return routers[strategy]

    def planner(service: Service, spec: RequestSpec) -> Plan:
        plan = revision_planner(service, spec)
        # Argo CD / Flux: who reconciles it, and the pause the rollback makes (or a refusal).
        return (
            plan
            if spec.flag is not None
            else with_gitops(plan, service, clusters.for_service(service))
        )

    def revision_planner(service: Service, spec: RequestSpec) -> Plan:
        from rollback_bot.executors.argo_rollout import STRATEGY as ROLLOUT
        from rollback_bot.executors.flag import FlagSwitch
        from rollback_bot.executors.flag_rollback import OFF, FlagExecutor
        from rollback_bot.executors.helm import strategy_refusal

        presenter.revisions.forget(service.name)
        if spec.flag is not None:
            restore = OFF if spec.flag_restore is None else spec.flag_restore
            switch = FlagExecutor(FlagSwitch(clusters.for_service(service)))
            return switch.plan_flag(service, spec.flag, restore=restore)
        if service.rollout:  # an Argo Rollout: abort and undo, whatever the strategy says
            to = spec.to_revision if isinstance(spec.to_revision, int) else None
            return executor(ROLLOUT).plan(service, to_revision=to)
        strategy = spec.strategy or service.strategy
        if (refused := strategy_refusal(service, strategy)) is not None:
            raise refused
        if strategy not in REVISION_STRATEGIES:
            return executor(strategy).plan(service, to_revision=None)
        # One answer for every surface: the target comes from evidence, never a fallback.
        choice = targets.choice(service)
        number = resolve_revision(clusters.for_service(service), service, spec.to_revision)
        if number is None:
            if choice.target is None:
                raise ExecutionError(choice.no_target_text())
            number = choice.target.number
        plan = executor(strategy).plan(service, to_revision=number)
        return check_target(plan, choice, force_bad=spec.force_bad)

    def running(service: Service, spec: RequestSpec) -> Seen | None:
        """An instant rollback of a Deployment: its running release in one read."""
        from rollback_bot.executors.instant import running_release

        strategy = spec.strategy or service.strategy
        if spec.flag is not None or service.rollout or service.target_kind != "deployment":
            return None
        if strategy != "instant":
            return None
        revision, image = running_release(clusters.for_service(service), service)
        return None if revision is None else Seen(str(revision), image)

    def rollback_service(effects: EffectSink) -> RollbackService:
        return RollbackService(
            catalog=catalog,
            uow=uow,
            clock=clock,
            directory=directory,
            planner=planner,
            effects=_CountedEffects(effects, metrics),
            running=running,
        )

    runner = Runner(
        catalog=catalog,
        uow=uow,
        clock=clock,
        executors=executor,
        gate=gate,
        notifier=notifier,
        engine=engine,
        rollbacks=rollback_service,
        snapshots=snapshots,
        mitigate=incident_lifecycle.mitigate,
        events=EventRecorder(kube, by_cluster=clusters.get),
        gitops=GitOpsPauser(kube, apis_for=clusters.for_service),
    )
    rollbacks = runner.rollbacks
    automation = Automation(rollbacks=rollbacks, suggestions=notifier, uow=uow)
    queries = Queries(
        catalog=catalog,
        uow=uow,
        clock=clock,
        kube=kube,
        targets=targets,
        apis_for=clusters.for_service,
    )
    relay = AlertRelay(
        catalog=catalog, uow=uow, clock=clock, listener=_Fanout(notifier, automation)
    )
    runner.jobs.on_lag = metrics.scheduler_lag.observe
    services = Services(
        settings=settings,
        catalog=catalog,
        clock=clock,
        engine=engine,
        uow=uow,
        slack=slack,
        outbox=outbox,
        directory=directory,
        kube=kube,
        clusters=clusters,
        presenter=presenter,
        notifier=notifier,
        rollbacks=rollbacks,
        runner=runner,
        relay=relay,
        automation=automation,
        metrics=metrics,
        gate=gate,
        queries=queries,
        conversations=Conversations(
            slack=slack,
            rollbacks=rollbacks,
            presenter=presenter,
            queries=queries,
            catalog=catalog,
            uow=uow,
            clock=clock,
            alertmanager=alertmanager,
        ),
        flags=FlagService(rollbacks=rollbacks, uow=uow),
        gitops=GitOpsService(
            catalog=catalog,
            uow=uow,
            clock=clock,
            apis=kube,
            rollbacks=rollbacks,
            notifier=notifier,
            apis_for=clusters.for_service,
        ),
        marks=ReleaseMarks(uow=uow, clock=clock, targets=targets, principal=rollbacks.principal),
        incidents=incident_lifecycle.Incidents(
            catalog=catalog, uow=uow, clock=clock, principal=rollbacks.principal
        ),
        housekeeping=IdempotencyPurge(uow=uow),
        notes=IncidentNotes(
            catalog=catalog,
            uow=uow,
            clock=clock,
            principal=rollbacks.principal,
            permalink=slack_permalink(slack),
        ),
        poller=QueryPoller(
            catalog=catalog,
            relay=relay,
            clock=clock,
            default_prometheus_url=catalog.prometheus_url,
            prometheus=prometheus,
        ),
        watcher=DeploymentWatcher(
            catalog=catalog,
            apis=kube,
            uow=uow,
            clock=clock,
            post=thread_poster(notifier, uow),
            by_cluster=clusters.get,
        ),
    )
    if settings.leader_election:
        elect(services, kube.api_client)
    return services


def elect(services: Services, api_client: Any) -> None:
    """Replicas: only the holder of the Lease runs scheduled work (``leadership``)."""
    loops: list[Work] = [w for w in (services.poller, services.watcher, services.housekeeping) if w]
    scheduled = ScheduledWork(
        runner=services.runner,
        loops=loops,
        leader_gauge=services.metrics.leader,
        poll_seconds=min(0.5, services.settings.leader_election_retry_period),
    )
    services.scheduled = scheduled
    services.elector = LeaseElector(
        api_client=api_client,
        settings=election_settings(services.settings),
        clock=services.clock,
        on_started=scheduled.lead,
        on_stopped=scheduled.follow,
    )


def resolve_revision(kube: KubeApis, service: Service, spec: int | str | None) -> int | None:
    """``--to`` given as an image tag or reference: the one revision running it."""
    if spec is None or isinstance(spec, int):
        return spec
    revisions = service_revisions(kube, service)
    hits = [
        r.number
        for r in revisions
        if any(i == spec or i.endswith((f":{spec}", f"@{spec}")) for i in r.images)
    ]
    if not hits:
        raise ExecutionError(
            str(unknown_revision(service.name, spec, [r.number for r in revisions]))
        )
    if len(hits) > 1:
        raise ExecutionError(str(ambiguous_revision(service.name, spec, hits)))
    return hits[0]


CONNECTION_LIMIT = 1000  # open connections; each idle one is a socket in the event loop
CHANNEL_TIMEOUT = 10  # seconds a connection may sit idle (Slack's own requests take < 3)
CLEANUP_INTERVAL = 2  # seconds between sweeps for idle connections


class ServerThread:
    """The WSGI app served by waitress on a background thread; binds port 0 in tests."""

    def __init__(self, wsgi_app: Any, *, host: str = "127.0.0.1", port: int = 0, threads: int = 16):
        from waitress.server import create_server

        self._server = create_server(
            wsgi_app,
            host=host,
            port=port,
            threads=threads,
            # A connection costs a socket, not a thread, until its request is complete:
            # waitress reads in its event loop. So a crowd of idle or half-sent clients is
            # bounded by the connection limit (default 100, which such a crowd would fill,
            # and then nothing is accepted) and by the idle timeout that reaps them.
            connection_limit=CONNECTION_LIMIT,
            channel_timeout=CHANNEL_TIMEOUT,
            cleanup_interval=CLEANUP_INTERVAL,
            ident="rollback-bot",
        )
        self.port = int(self._server.effective_port)
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every channel from inside the loop, then the trigger once nothing can pull it.

        Closing only the listener leaves the trigger and keep-alive channels in the loop's
        map, so the loop (and join) would run on. The trigger's pipe is closed last, after
        the worker threads are gone: a worker finishing a response pulls the trigger, and a
        closed pipe there is the ``EBADF`` (or, once the fd number is reused, a write into
        someone else's file) that a naive ``close_all`` risks.
        """
        from waitress import wasyncore

        server: Any = self._server
        trigger = server.trigger

        def close_channels() -> None:
            for channel in list(server._map.values()):
                with contextlib.suppress(OSError):
                    if channel is server:
                        # The server's own close() closes the trigger too; close only
                        # its listening socket here, the trigger goes last.
                        wasyncore.dispatcher.close(server)
                    elif channel is not trigger:
                        channel.close()
            trigger.del_channel()  # the loop ends when its map is empty

        if self._thread.is_alive():
            trigger.pull_trigger(close_channels)
            self._thread.join(timeout=5)
        else:
            close_channels()
        server.task_dispatcher.shutdown(timeout=5)
        trigger.close()
