"""``rollback-bot serve`` as a process: what it refuses, what it warns about, /readyz, one
scheduler per SQLite database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from sandbox.stack import BOT_TOKEN, SIGNING_SECRET, LoopbackStack, wait_until
from tests.e2e.conftest import CATALOG, FAST_SLACK

START_TIMEOUT = 60.0


class Serve:
    """``rollback-bot serve`` with its output in files (pipes can fill)."""

    def __init__(self, env: dict[str, str], logs: Path, name: str = "serve") -> None:
        self.stdout = logs / f"{name}.out"
        self.stderr = logs / f"{name}.err"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rollback_bot.cli", "serve", "--host", "127.0.0.1"],
                env=env,
                stdout=out,
                stderr=err,
            )

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def url(self) -> str:
        def seen() -> str | None:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode}:\n{self.output()}")
            for line in self.stdout.read_text().splitlines():
                if line.startswith("rollback-bot listening on "):
                    return line.removeprefix("rollback-bot listening on ").strip()
            return None

        return str(wait_until(seen, timeout=START_TIMEOUT, interval=0.05))

    def wait(self) -> int:
        return self.process.wait(timeout=START_TIMEOUT)

    def terminate(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@pytest.fixture
def bare_stack(migrated_url: str) -> Iterator[LoopbackStack]:
    """Emulator and stand-in only: the bot under test is a separate process."""
    if not migrated_url.startswith("sqlite:"):
        pytest.skip("the scheduler lock is for SQLite; PostgreSQL is the HA design's")
    stack = LoopbackStack(
        slack_channel_rate=FAST_SLACK, catalog=CATALOG, database_url=migrated_url, ready_delay=0.05
    )
    stack.start(bot=False)
    try:
        yield stack
    finally:
        stack.stop()


def _env(stack: LoopbackStack, tmp_path: Path, **overrides: str) -> dict[str, str]:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(CATALOG, sort_keys=False))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "ROLLBACK_BOT_", "ALERT_", "KUBE"))
    }
    env.update(
        SLACK_API_URL=stack.slack.url,
        SLACK_CHANNEL_RATE=str(FAST_SLACK),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        DATABASE_URL=stack.database_url,
        ROLLBACK_BOT_CATALOG=str(catalog),
        KUBECONFIG=stack.kube.write_kubeconfig(tmp_path / "kubeconfig"),
        PORT="0",
        PYTHONUNBUFFERED="1",
        HOME=str(tmp_path),
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def test_missing_settings_are_refused_one_line_each(
    bare_stack: LoopbackStack, tmp_path: Path
) -> None:
    env = _env(
        bare_stack,
        tmp_path,
        SLACK_SIGNING_SECRET="",
        SLACK_BOT_TOKEN="",
        KUBECONFIG=str(tmp_path / "no-such-kubeconfig"),
    )
    serve = Serve(env, tmp_path)
    assert serve.wait() == 2
    assert serve.stdout.read_text() == ""
    lines = serve.stderr.read_text().splitlines()
    assert [line.split(" ", 2)[1] for line in lines] == [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "KUBECONFIG",
    ], lines
    assert all(line.startswith("rollback-bot: ") for line in lines)
    assert "Traceback" not in serve.output()


def test_serve_is_ready_only_while_its_dependencies_answer_and_runs_alone(
    bare_stack: LoopbackStack, tmp_path: Path
) -> None:
    bare_stack.slack.inject("conversations.info", error="missing_scope")
    first = Serve(_env(bare_stack, tmp_path), tmp_path, "first")
    try:
        url = first.url()
        err = first.stderr.read_text()
        assert "WARNING: ALERT_WEBHOOK_TOKEN is not set" in err
        # The catalog's channels are asked about after the listening line (one Slack call
        # per channel); their warning follows it.
        wait_until(
            lambda: "lacks the channels:read / groups:read scopes" in first.stderr.read_text(),
            timeout=START_TIMEOUT,
        )

        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
        before = len(bare_stack.slack.calls_for("auth.test"))
        answers = [requests.get(f"{url}/readyz", timeout=10) for _ in range(20)]
        assert {a.status_code for a in answers} == {200}, answers[0].text
        body = answers[0].json()
        assert body["ok"] is True
        assert set(body["checks"]) == {"database", "kubernetes", "slack"}
        # A probe storm is answered from the cache: Slack hears of it once.
        assert len(bare_stack.slack.calls_for("auth.test")) - before == 1

        # A second serve on the same SQLite file refuses, before it schedules anything.
        second = Serve(_env(bare_stack, tmp_path), tmp_path, "second")
        assert second.wait() == 2
        refusal = second.stderr.read_text()
        assert f"serve (pid {first.process.pid}) already runs on this database" in refusal
        assert "Traceback" not in second.output()
        assert first.process.poll() is None
    finally:
        assert first.terminate() == 0, first.output()
    # Once the first has stopped, the database is free again.
    third = Serve(_env(bare_stack, tmp_path), tmp_path, "third")
    try:
        third.url()
    finally:
        assert third.terminate() == 0, third.output()


def test_readyz_says_which_dependency_failed(bare_stack: LoopbackStack, tmp_path: Path) -> None:
    serve = Serve(_env(bare_stack, tmp_path, ALERT_WEBHOOK_TOKEN="t0ken"), tmp_path)
    try:
        url = serve.url()
        assert "ALERT_WEBHOOK_TOKEN" not in serve.stderr.read_text()
        bare_stack.slack.inject("auth.test", error="invalid_auth")
        bare_stack.kube.stop()
        answer = requests.get(f"{url}/readyz", timeout=30)
        assert answer.status_code == 503
        body = answer.json()
        assert body["error"] == "not ready: kubernetes, slack failed"
        assert body["checks"]["database"] == {"ok": True, "detail": "ok"}
        assert body["checks"]["slack"] == {"ok": False, "detail": "auth.test: invalid_auth"}
        assert body["checks"]["kubernetes"]["ok"] is False
        # Liveness is not readiness: the process still serves.
        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
    finally:
        assert serve.terminate() == 0, serve.output()


#: Runs ``serve`` in this interpreter; at its listening line, writes ``sys.modules`` to
#: $PROBE_MODULES and stops it as SIGTERM does.
SERVE_PROBE = """
import json, os, signal, sys
from rollback_bot.cli import main

class Listening:
    def __init__(self, inner):
        self.inner = inner
    def write(self, text):
        if "listening on" in text:
            with open(os.environ["PROBE_MODULES"], "w") as out:
                json.dump(sorted(sys.modules), out)
            os.kill(os.getpid(), signal.SIGTERM)
        return self.inner.write(text)
    def flush(self):
        self.inner.flush()

sys.stdout = Listening(sys.stdout)
sys.exit(main(["serve", "--host", "127.0.0.1"]))
"""

#: What ``serve`` loads when first used, not at start: the postmortem (export) modules, the
#: executors (on the first rollback planned or resumed), the migration tool (the schema
#: check reads the revision itself), and the generated Kubernetes API groups, which import
#: hundreds of models (reads are raw GETs).
NOT_AT_SERVE_START = (
    "alembic",
    "rollback_bot.executors.registry",
    "rollback_bot.executors.instant",
    "rollback_bot.executors.argo_rollout",
    "rollback_bot.executors.flag_rollback",
    "rollback_bot.incidents.postmortem",
    "rollback_bot.incidents.postmortem_load",
    "rollback_bot.incidents.postmortem_picture",
    "rollback_bot.incidents.postmortem_html",
    "kubernetes.client.api.apps_v1_api",
    "kubernetes.client.api.core_v1_api",
    "kubernetes.client.api.networking_v1_api",
)


def test_serve_starts_without_the_modules_it_loads_on_first_use(
    bare_stack: LoopbackStack, tmp_path: Path
) -> None:
    modules = tmp_path / "modules.json"
    env = _env(bare_stack, tmp_path, PROBE_MODULES=str(modules))
    done = subprocess.run(
        [sys.executable, "-c", SERVE_PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rollback-bot listening on" in done.stdout
    loaded = set(json.loads(modules.read_text()))
    assert "rollback_bot.web.http" in loaded  # the probe saw a started bot
    assert not loaded & set(NOT_AT_SERVE_START), sorted(loaded & set(NOT_AT_SERVE_START))
