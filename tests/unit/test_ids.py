"""Rollback and incident ids: one spelling out, every documented shorthand back in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollback_bot.ids import (
    format_incident_id,
    format_rollback_id,
    parse_incident_id,
    parse_rollback_id,
)

ids = st.integers(min_value=1, max_value=999_999_999)


@given(ids)
def test_rollback_ids_round_trip(number: int) -> None:
    assert format_rollback_id(number) == f"R-{number}"
    assert parse_rollback_id(format_rollback_id(number)) == number


@given(ids)
def test_incident_ids_round_trip(number: int) -> None:
    assert format_incident_id(number) == f"INC-{number}"
    assert parse_incident_id(format_incident_id(number)) == number


@given(ids, st.sampled_from(["R-{}", "r-{}", "r{}", "R{}", "#{}", "{}", " R-{} "]))
def test_every_rollback_shorthand_reads_back(number: int, form: str) -> None:
    assert parse_rollback_id(form.format(number)) == number


@given(ids, st.sampled_from(["INC-{}", "inc-{}", "inc{}", "Inc{}", "#{}", "{}"]))
def test_every_incident_shorthand_reads_back(number: int, form: str) -> None:
    assert parse_incident_id(form.format(number)) == number


@pytest.mark.parametrize("token", ["0", "R-0", "INC-7", "R-", "", "R-1234567890", "R-1x", "-1"])
def test_what_is_not_a_rollback_id(token: str) -> None:
    assert parse_rollback_id(token) is None


@pytest.mark.parametrize("token", ["0", "INC-0", "R-7", "INC-", "", "inc-1234567890", "7a"])
def test_what_is_not_an_incident_id(token: str) -> None:
    assert parse_incident_id(token) is None


@given(st.text(max_size=20))
def test_parsing_never_raises(token: str) -> None:
    for parsed in (parse_rollback_id(token), parse_incident_id(token)):
        assert parsed is None or parsed > 0
