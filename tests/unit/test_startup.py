"""What ``serve`` refuses and warns about, readiness caching and the scheduler lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from rollback_bot.config import Settings
from rollback_bot.startup import kubeconfig_problem, open_alerts_warning, settings_problems
from rollback_bot.storage.lock import AlreadyRunning, SchedulerLock, sqlite_file
from rollback_bot.web.readiness import Readiness


@pytest.fixture(autouse=True)
def _no_kube_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config


def test_every_missing_setting_is_one_line(tmp_path: Path) -> None:
    problems = settings_problems(Settings(), socket_mode=False)
    assert [p.split(" ", 1)[0] for p in problems] == [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "no",  # no Kubernetes configuration
    ]
    assert all("\n" not in p for p in problems)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    ready = Settings(
        slack_bot_token=SecretStr("xoxb-1"),
        slack_signing_secret=SecretStr("s"),
        kubeconfig=str(kubeconfig),
    )
    assert settings_problems(ready, socket_mode=False) == []
    # Socket Mode needs the app token, not the signing secret.
    socket = ready.model_copy(update={"slack_signing_secret": SecretStr("")})
    assert [p.split(" ", 1)[0] for p in settings_problems(socket, socket_mode=True)] == [
        "SLACK_APP_TOKEN"
    ]


def test_an_unreadable_kubeconfig_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope"
    assert kubeconfig_problem(str(missing)) == (
        f"KUBECONFIG {missing} cannot be read (No such file or directory): point it at a kubeconfig"
    )
    monkeypatch.setenv("KUBECONFIG", str(missing))
    assert "cannot be read" in str(kubeconfig_problem())


def test_open_alert_endpoints_are_warned_about() -> None:
    assert "ALERT_WEBHOOK_TOKEN is not set" in str(open_alerts_warning(Settings()))
    assert open_alerts_warning(Settings(alert_webhook_token=SecretStr("t"))) is None


def test_readiness_asks_each_dependency_once_per_interval() -> None:
    now = [0.0]
    calls = {"slack": 0}

    def slack() -> str | None:
        calls["slack"] += 1
        return None if calls["slack"] == 1 else "auth.test: invalid_auth"

    def kube() -> str | None:
        raise ConnectionError("refused")

    readiness = Readiness(
        {"database": lambda: None, "kubernetes": kube, "slack": slack},
        ttl_seconds=5,
        monotonic=lambda: now[0],
    )
    for _ in range(50):
        results = {r.name: r for r in readiness.results()}
    assert calls["slack"] == 1
    assert results["database"].ok and results["slack"].ok
    assert not results["kubernetes"].ok
    assert results["kubernetes"].detail == "ConnectionError: refused"
    now[0] = 5.0
    results = {r.name: r for r in readiness.results()}
    assert calls["slack"] == 2
    assert results["slack"].detail == "auth.test: invalid_auth"


def test_the_lock_file_sits_beside_a_sqlite_file_only(tmp_path: Path) -> None:
    assert sqlite_file(f"sqlite:///{tmp_path}/bot.db") == (tmp_path / "bot.db").resolve()
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql+psycopg://u@h/db") is None
    lock = SchedulerLock.for_database(f"sqlite:///{tmp_path}/bot.db")
    assert lock is not None and lock.path == (tmp_path / "bot.db.lock").resolve()


HOLD = """
import sys, time
from rollback_bot.storage.lock import SchedulerLock
lock = SchedulerLock.for_database(sys.argv[1]).acquire()
print("HELD", flush=True)
sys.stdin.read()
lock.release()
print("RELEASED", flush=True)
"""


def test_a_second_process_cannot_take_the_scheduler_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bot.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "HELD"
        lock = SchedulerLock.for_database(url)
        assert lock is not None
        with pytest.raises(AlreadyRunning) as err:
            lock.acquire()
        assert f"(pid {holder.pid})" in str(err.value)
        assert "two schedulers on one database would run every job twice" in str(err.value)
        holder.communicate("", timeout=30)  # the holder releases and exits
        lock.acquire().release()  # now free
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
