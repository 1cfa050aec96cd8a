"""The running bot's parts, composed: what the web layer and the CLI are handed.

``rollback_bot.app.build`` fills it; listeners only read it. It lives apart from the
composition root so that the web layer can name its type without importing ``app``, and
only the layers above everything (web, app, cli) may import it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk import WebClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from rollback_bot.alerts.automation import Automation
from rollback_bot.alerts.poller import QueryPoller
from rollback_bot.alerts.relay import AlertRelay
from rollback_bot.catalog import Catalog
from rollback_bot.clock import Clock
from rollback_bot.config import Settings
from rollback_bot.executors.health import HealthGate
from rollback_bot.incidents.lifecycle import Incidents
from rollback_bot.incidents.notes import IncidentNotes
from rollback_bot.incidents.queries import Queries
from rollback_bot.incidents.watcher import DeploymentWatcher
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.clusters import Clusters
from rollback_bot.kube.lease import LeaseElector
from rollback_bot.leadership import ScheduledWork
from rollback_bot.metrics import Metrics
from rollback_bot.rollbacks.flags import FlagService
from rollback_bot.rollbacks.gitops import GitOpsService
from rollback_bot.rollbacks.runner import Runner
from rollback_bot.rollbacks.service import RollbackService
from rollback_bot.rollbacks.targets import ReleaseMarks
from rollback_bot.slack.conversations import Conversations
from rollback_bot.slack.directory import GroupDirectory
from rollback_bot.slack.notifier import SlackNotifier
from rollback_bot.slack.outbox import Outbox
from rollback_bot.slack.presenter import Presenter
from rollback_bot.storage.housekeeping import IdempotencyPurge
from rollback_bot.storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    clock: Clock
    engine: Engine
    uow: UnitOfWorkFactory
    slack: WebClient
    outbox: Outbox
    directory: GroupDirectory
    kube: KubeApis
    presenter: Presenter
    notifier: SlackNotifier
    rollbacks: RollbackService
    runner: Runner[RollbackService]
    relay: AlertRelay
    automation: Automation
    metrics: Metrics
    gate: HealthGate
    queries: Queries
    conversations: Conversations
    flags: FlagService
    marks: ReleaseMarks
    incidents: Incidents
    poller: QueryPoller | None = None
    watcher: DeploymentWatcher | None = None
    housekeeping: IdempotencyPurge | None = None
    gitops: GitOpsService | None = None  # Resume GitOps (Argo CD / Flux) after a rollback
    notes: IncidentNotes | None = None
    clusters: Clusters | None = None  # one client per cluster; ``kube`` is the default one
    # High availability: set when LEADER_ELECTION=true; the lease decides who leads.
    elector: LeaseElector | None = None
    scheduled: ScheduledWork | None = None

    def database_ok(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def start(self) -> None:
        if self.clusters is not None and len(self.clusters.names) > 1:
            self.clusters.check_at_start(log.warning)
        if self.elector is not None and self.scheduled is not None:
            # A follower until the lease says otherwise; the elector calls lead/follow.
            self.scheduled.start_following()
            self.elector.start()
            return
        self.runner.start()
        self.metrics.leader.set(1)
        if self.poller is not None:
            self.poller.start()
        if self.watcher is not None:
            self.watcher.start()
        if self.housekeeping is not None:
            self.housekeeping.start()

    def stop(self) -> None:
        if self.elector is not None:
            self.elector.stop()  # stops the leader's loops and gives the lease up
        if self.housekeeping is not None:
            self.housekeeping.stop()
        if self.watcher is not None:
            self.watcher.stop()
        if self.poller is not None:
            self.poller.stop()
        self.runner.stop()
        self.outbox.flush(timeout=5)
        self.outbox.close()
        self.engine.dispose()
