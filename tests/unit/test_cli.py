"""The ``rollback-bot`` commands as an operator runs them: exit codes and what they print."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollback_bot.cli import _redact, main
from rollback_bot.storage import db

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CATALOG = REPO / "src" / "rollback_bot" / "sample_catalog.yaml"
EXAMPLE_CATALOG = REPO / "catalog.example.yaml"

BROKEN_CATALOG = """\
services:
  - name: checkout
    deployment: checkout
    channel: C0ALERTS
    match: {service: checkout}
    strategy: blue-green
    dependents: [payments]
    policy:
      approvers: {user: [U0BOB]}
  - name: checkout
    deployment: checkout-eu
    channel: C0ALERTS
    match: {service: checkout-eu}
    gradual: {stable: a, canary: b, steps: [20, 50]}
"""


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the environment; start every test from the documented defaults."""
    for name in (
        "DATABASE_URL",
        "ROLLBACK_BOT_CATALOG",
        "PORT",
        "ALERT_WEBHOOK_TOKEN",
        "LOG_LEVEL",
        "LOG_FORMAT",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """main() configures the process's logging; give the next test the logging it had."""
    root, alembic = logging.getLogger(), logging.getLogger("alembic")
    handlers, level, alembic_level = root.handlers[:], root.level, alembic.level
    yield
    root.handlers = handlers
    root.setLevel(level)
    alembic.setLevel(alembic_level)


# -- check-config -----------------------------------------------------------------------------


@pytest.mark.parametrize("catalog", [SAMPLE_CATALOG, EXAMPLE_CATALOG], ids=["sample", "example"])
def test_check_config_accepts_the_shipped_catalogs(
    catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", str(catalog)]) == 0
    out = capsys.readouterr().out
    assert f"{catalog}: OK" in out
    assert "checkout" in out


def test_check_config_accepts_the_readme_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", readme, re.S)
    assert example is not None
    path = tmp_path / "catalog.yaml"
    path.write_text(example[1])

    assert main(["check-config", str(path)]) == 0
    assert "OK, 3 service(s): checkout, storefront, search" in capsys.readouterr().out


def test_check_config_reads_the_catalog_named_by_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLBACK_BOT_CATALOG", str(SAMPLE_CATALOG))
    assert main(["check-config"]) == 0
    assert "OK, 2 service(s): checkout, search" in capsys.readouterr().out


def test_check_config_lists_every_problem_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(BROKEN_CATALOG)

    assert main(["check-config", str(path)]) == 1

    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    # One run lists every problem, structural and cross-field alike: none waits for a
    # second run behind another.
    assert lines[0] == f"{path}: 7 problem(s)"
    assert set(lines[1:]) == {
        "services[0].policy.approvers: unknown key 'user'",
        "services[1].gradual.steps: must end at 0 (all traffic back on stable)",
        "services[0].blue_green: required when strategy is blue-green",
        "services[0].dependents: unknown service 'payments'",
        "services[1].name: duplicate service name 'checkout'",
        "services[0].policy.approvers: environment production needs one approval (two-person"
        " rule) but no approvers listed and no usergroups: no request could ever be approved;"
        " list more approvers or a user group, or set approvals: 0 to turn the rule off on"
        " purpose",
        "services[1].policy.approvers: environment production needs one approval (two-person"
        " rule) but no approvers listed and no usergroups: no request could ever be approved;"
        " list more approvers or a user group, or set approvals: 0 to turn the rule off on"
        " purpose",
    }


def test_fixing_what_check_config_listed_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every problem of the first run fixed: the second run finds nothing new.
    path = tmp_path / "catalog.yaml"
    fixed = (
        BROKEN_CATALOG.replace("{user: [U0BOB]}", "{users: [U0BOB]}")
        .replace("[20, 50]", "[50, 20, 0]")
        .replace("strategy: blue-green", "strategy: instant")
        .replace("dependents: [payments]", "dependents: [checkout-eu]")
        .replace(
            "  - name: checkout\n    deployment: checkout-eu",
            "  - name: checkout-eu\n"
            "    deployment: checkout-eu\n    policy: {approvers: {users: [U0BOB]}}",
        )
    )
    path.write_text(fixed)

    assert main(["check-config", str(path)]) == 0, capsys.readouterr().out
    assert "OK, 2 service(s): checkout, checkout-eu" in capsys.readouterr().out


def test_check_config_on_unreadable_or_invalid_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["check-config", str(missing)]) == 1
    assert "cannot read" in capsys.readouterr().out

    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  - name: [unclosed\n")
    assert main(["check-config", str(bad)]) == 1
    assert "not valid YAML at line" in capsys.readouterr().out


# -- migrate and serve ------------------------------------------------------------------------


def test_migrate_brings_a_new_sqlite_database_to_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    monkeypatch.setenv("DATABASE_URL", url)

    assert main(["migrate"]) == 0
    assert "database at head" in capsys.readouterr().out

    engine = db.make_engine(url)
    try:
        assert db.is_up_to_date(engine)
    finally:
        engine.dispose()
    # Running it again is safe.
    assert main(["migrate"]) == 0


def test_commands_are_quiet_on_stderr_unless_verbose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/quiet.db")

    assert main(["migrate"]) == 0
    assert main(["incidents"]) == 0
    assert capsys.readouterr().err == ""

    # -v before or after the command: the migration tooling's own lines come back
    # (`incidents` no longer loads Alembic at all: its schema check is one query).
    assert main(["migrate", "-v"]) == 0
    assert "INFO alembic.runtime.migration" in capsys.readouterr().err
    assert main(["-v", "migrate"]) == 0
    assert "INFO alembic.runtime.migration" in capsys.readouterr().err


def test_invalid_log_settings_are_refused_with_the_setting_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    assert main(["check-config", str(SAMPLE_CATALOG)]) == 2
    assert "log_format" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "printed"),
    [
        ("postgresql+psycopg://bot:s3cret@db:5432/rb", "postgresql+psycopg://bot:***@db:5432/rb"),
        ("postgresql://bot@db/rb", "postgresql://bot@db/rb"),
        ("sqlite:////var/lib/rb.db", "sqlite:////var/lib/rb.db"),
    ],
)
def test_database_urls_are_printed_without_their_password(url: str, printed: str) -> None:
    assert _redact(url) == printed


def _serve_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The settings serve needs before it looks at the database or the catalog."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))


def test_serve_refuses_an_unmigrated_database(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _serve_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ROLLBACK_BOT_CATALOG", str(SAMPLE_CATALOG))
    monkeypatch.setenv("PORT", "0")

    assert main(["serve", "--host", "127.0.0.1"]) != 0

    captured = capsys.readouterr()
    assert "run `rollback-bot migrate`" in captured.err
    assert "listening" not in captured.out


def test_serve_refuses_a_broken_catalog(
    migrated_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(BROKEN_CATALOG)
    _serve_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("DATABASE_URL", migrated_url)
    monkeypatch.setenv("ROLLBACK_BOT_CATALOG", str(path))

    assert main(["serve", "--host", "127.0.0.1"]) != 0
    assert "rollback-bot check-config" in capsys.readouterr().err


# -- incidents and export ---------------------------------------------------------------------

OPENED = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def seeded(migrated_url: str, uow: db.UnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch) -> int:
    """One mitigated incident with a short timeline, written through the repositories."""
    with uow() as u:
        incident = u.incidents.add(
            service="checkout", title="HighErrorRate on checkout", opened_at=OPENED
        )
        u.flush()
        incident.acknowledged_at = OPENED + timedelta(seconds=30)
        incident.acknowledged_by = "U0ALICE"
        incident.mitigated_at = OPENED + timedelta(seconds=95)
        incident.state = "mitigated"
        for offset, actor, kind, summary in [
            (0, "alertmanager", "alert.firing", "HighErrorRate firing on checkout/production"),
            (30, "U0ALICE", "rollback.requested", "U0ALICE requested instant rollback"),
            (60, "U0BOB", "rollback.approved", "U0BOB approved R-1 (1/1 approvals)"),
            (95, "rollback-bot", "rollback.done", "R-1 verified"),
        ]:
            u.timeline.append(
                at=OPENED + timedelta(seconds=offset),
                actor=actor,
                kind=kind,
                summary=summary,
                incident_id=incident.id,
                service="checkout",
            )
        u.commit()
        incident_id = incident.id
    monkeypatch.setenv("DATABASE_URL", migrated_url)
    return incident_id


def test_incidents_lists_the_seeded_incident(
    seeded: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["incidents"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "SERVICE", "OPENED", "STATE", "TTA", "TTM", "OUTCOME"]
    assert lines[1].split() == [
        f"INC-{seeded}",
        "checkout",
        "2026-11-25T09:00:00+00:00",
        "mitigated",
        "30.0s",
        "1m",
        "35s",
        "mitigated",
        "(no",
        "rollback)",
    ]


def test_export_markdown_to_stdout(seeded: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", f"INC-{seeded}", "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# Postmortem INC-{seeded}: HighErrorRate on checkout")
    assert "- Time to acknowledge: 30.0s" in out
    assert "- Time to mitigate: 1m 35s" in out
    assert "| U0BOB | rollback.approved |" in out


def test_export_json_to_a_file(
    seeded: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "pm.json"

    assert main(["export", str(seeded), "--format", "json", "-o", str(target)]) == 0

    assert f"wrote {target}" in capsys.readouterr().out
    doc = json.loads(target.read_text())
    assert doc["incident"]["id"] == f"INC-{seeded}"
    assert doc["metrics"]["time_to_acknowledge_seconds"] == 30
    assert doc["metrics"]["time_to_mitigate_seconds"] == 95
    assert [e["kind"] for e in doc["timeline"]] == [
        "alert.firing",
        "rollback.requested",
        "rollback.approved",
        "rollback.done",
    ]


def test_export_of_an_unknown_or_malformed_incident(
    seeded: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "INC-999"]) == 1
    assert "There is no incident INC-999." in capsys.readouterr().err

    assert main(["export", "yesterday"]) == 2
    assert "is not an incident id" in capsys.readouterr().err


def test_incidents_and_export_on_an_unmigrated_database_say_what_to_run(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    for command in (["incidents"], ["export", "INC-1"]):
        assert main(command) == 2
        assert "run `rollback-bot migrate`" in capsys.readouterr().err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from rollback_bot import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"rollback-bot {__version__}\n"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"DATABASE_URL": "sqlite:////tmp/x.db", "LOG_LEVEL": "debug", "LOG_FORMAT": "json"},
        {"database_url": "postgresql://u@h/db", "log_level": " Warning "},
        {"LOG_LEVEL": ""},
        {"LOG_LEVEL": "loud"},
        {"LOG_FORMAT": "xml"},
        {"LOG_FORMAT": "JSON"},
        {"SLACK_BOT_TOKEN": "xoxb-1", "METRICS_TOKEN": "m", "SLACK_SIGNING_SECRET": ""},
    ],
)
def test_read_commands_read_the_settings_as_the_full_settings_do(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read commands' own reader (no pydantic) gives the values ``Settings`` gives and
    refuses what it refuses."""
    from pydantic import ValidationError

    from rollback_bot.command_env import InvalidSetting, read_command_settings
    from rollback_bot.config import load_settings

    for name in ("DATABASE_URL", "LOG_LEVEL", "LOG_FORMAT", "SLACK_BOT_TOKEN", "METRICS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        full = load_settings()
    except ValidationError as exc:
        with pytest.raises(InvalidSetting) as refused:
            read_command_settings()
        field_name = str(exc.errors()[0]["loc"][0])
        assert field_name in str(refused.value)
        return
    light = read_command_settings()
    assert light.database_url == full.database_url
    assert light.log_level == full.log_level
    assert light.log_format == full.log_format
    assert light.has_slack_token == bool(full.slack_bot_token.get_secret_value())
    assert light.secret_values() == full.secret_values()


def test_a_read_command_refuses_invalid_log_settings_with_the_setting_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    assert main(["incidents"]) == 2
    assert "log_format" in capsys.readouterr().err
