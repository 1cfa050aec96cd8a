"""``check-config`` on the catalog that once passed as "OK": every danger, in one run."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollback_bot.catalog import CatalogError, parse_catalog
from rollback_bot.catalog.matchers import compile_matchers, overlap_witness
from rollback_bot.catalog.model import channel_problem, environment_problem
from rollback_bot.cli import main

DANGEROUS = """\
services:
  - name: checkout
    deployment: checkout
    environment: prod
    channel: "#alerts"
    match: {service: checkout}
    policy:
      requesters: {users: [U0ALICE]}
      approvers: {users: [U0BOB]}
      approvals: 3
    flags:
      - {name: pricing, configmap: flags, key: PRICING, off: off}
  - name: checkout-copy
    deployment: checkout-copy
    channel: C0ALERTS
    match: {service: checkout}
"""


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "ROLLBACK_BOT_CATALOG"):
        monkeypatch.delenv(name, raising=False)


def test_the_dangerous_catalog_is_refused_with_every_problem_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(DANGEROUS)

    assert main(["check-config", str(path)]) == 1

    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines()]
    assert lines[0] == f"{path}: 7 problem(s)", out
    problems = lines[1:]
    assert (
        "services[0].environment: unknown environment 'prod': did you mean production? use one"
        " of production | staging | development | test (production turns on the two-person"
        " rule)" in problems
    )
    channel = "services[0].channel: '#alerts' is a channel name, not an id"
    assert any(p.startswith(channel) for p in problems)
    assert (
        "services[0].policy.approvers: approvals: 3 but only 1 approver user(s) listed and no"
        " usergroups: no request could ever be approved; list more approvers or a user group"
        in problems
    )
    # The service with no policy: production, so nobody could ever approve.
    assert any(
        p.startswith("services[1].policy.approvers: environment production needs one approval")
        for p in problems
    )
    assert (
        "services[1].match: overlaps service 'checkout': an alert labelled"
        " {service='checkout'} matches both, and only the first ('checkout') would get it;"
        " add a label that tells them apart" in problems
    )
    # The unquoted off: explained, key and value, with the line; no "Keys should be strings".
    assert (
        "services[0].flags[0]: the key off (line 12) is unquoted, and YAML reads it as the"
        ' boolean false: write it in quotes, "off":' in problems
    )
    assert any(
        p.startswith("services[0].flags[0].off: off (line 12) is unquoted") for p in problems
    )
    assert "Keys should be strings" not in out


def test_environment_is_a_declared_vocabulary() -> None:
    assert environment_problem("production") is None
    assert environment_problem("test") is None
    assert "did you mean staging?" in str(environment_problem("stage"))
    assert "did you mean development?" in str(environment_problem("dev"))
    assert "did you mean production?" in str(environment_problem("Production"))
    assert "did you mean" not in str(environment_problem("moon"))


def test_channel_ids_are_checked_by_form() -> None:
    for good in ("C0ALERTS", "G012AB", "D0BOB"):
        assert channel_problem(good) is None
    assert "channel name" in str(channel_problem("#alerts"))
    assert "channel name" in str(channel_problem("alerts"))
    assert "not a Slack channel id" in str(channel_problem("X0ALERTS"))
    with pytest.raises(CatalogError) as err:
        parse_catalog({"fallback_channel": "#incidents", "services": []})
    assert err.value.problems[0].startswith("fallback_channel: '#incidents' is a channel name")


def _policy(approvals: int | None, users: list[str], groups: list[str], env: str = "production"):
    policy: dict[str, object] = {"approvers": {"users": users, "usergroups": groups}}
    if approvals is not None:
        policy["approvals"] = approvals
    return {
        "services": [
            {
                "name": "a",
                "deployment": "a",
                "environment": env,
                "channel": "C0A",
                "match": {"service": "a"},
                "policy": policy,
            }
        ]
    }


def test_approvals_must_be_satisfiable_by_people_or_groups() -> None:
    assert parse_catalog(_policy(2, ["U1", "U2"], []))  # two people, two approvals
    assert parse_catalog(_policy(3, ["U1"], ["S0SRE"]))  # a group may hold many
    assert parse_catalog(_policy(None, [], [], env="staging"))  # no rule outside production
    assert parse_catalog(_policy(0, [], []))  # turned off on purpose
    for doc in (_policy(3, ["U1", "U2"], []), _policy(None, [], []), _policy(1, [], [])):
        with pytest.raises(CatalogError) as err:
            parse_catalog(doc)
        assert err.value.problems[0].startswith("services[0].policy.approvers:")
    # Each approval is by a different person: a name listed twice counts once.
    with pytest.raises(CatalogError):
        parse_catalog(_policy(2, ["U1", "U1"], []))


def test_overlapping_matches_come_with_an_alert_both_would_take() -> None:
    def witness(a: dict[str, str], b: dict[str, str]) -> dict[str, str] | None:
        return overlap_witness(compile_matchers(a), compile_matchers(b))

    assert witness({"service": "search"}, {"service": "search", "env": "staging"}) == {
        "service": "search",
        "env": "staging",
    }
    assert witness({"service": "=~check.*"}, {"service": "checkout"}) == {"service": "checkout"}
    assert witness({"service": "a"}, {"service": "b"}) is None
    assert witness({"service": "a", "env": "!=staging"}, {"service": "a", "env": "staging"}) is None
    assert witness({"service": "=~(a|b)"}, {"service": "=~b"}) == {"service": "b"}
