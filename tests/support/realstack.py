"""The whole bot (``build`` + bolt + waitress, the Slack stand-in) against the REAL control plane.

``LoopbackStack`` wires the bot to the emulator; this one gives it a kubeconfig of the real
apiserver instead (``Settings.kubeconfig``, as ``serve`` reads it), so the bot connects
with that identity's own token, and the helm it runs (``HELM_BIN``) gets the same
kubeconfig on its command line. Slack is still the stand-in, driven by signed requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rollback_bot.app import ServerThread, build, slack_client
from rollback_bot.config import Settings
from rollback_bot.storage.migrator import migrate
from rollback_bot.web.http import create_web_app
from rollback_bot.web.slack_app import create_bolt_app
from sandbox.stack import LoopbackStack


class RealClusterStack(LoopbackStack):
    def __init__(self, *, kubeconfig: Path, helm_bin: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kubeconfig = kubeconfig
        self.helm_bin = helm_bin

    def start(self, *, bot: bool = True) -> RealClusterStack:
        self.slack.start()  # no emulator: the cluster is the real one
        migrate(self.database_url)
        if bot:
            self.start_bot()
        return self

    def settings(self) -> Settings:
        return (
            super()
            .settings()
            .model_copy(update={"kubeconfig": str(self.kubeconfig), "helm_bin": self.helm_bin})
        )

    def start_bot(self) -> None:
        settings = self.settings()
        self.services = build(
            settings, catalog=self.catalog, clock=self._clock, slack=slack_client(settings)
        )
        web = create_web_app(self.services, create_bolt_app(self.services))
        self.services.start()
        self._server = ServerThread(web).start()

    def stop(self) -> None:
        self.stop_bot()
        self.slack.stop()
        self.http.close()
