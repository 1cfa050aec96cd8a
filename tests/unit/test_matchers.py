"""Catalog label matchers with PromQL semantics."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollback_bot.catalog.matchers import Matcher, compile_matchers, first_match, parse_matcher

LABELS = {"service": "checkout", "env": "production", "pod": "checkout-7f9c"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"service": "checkout"}, True),
        ({"service": "check"}, False),
        ({"service": "=~check.*"}, True),
        ({"service": "=~check"}, False),  # anchored: a prefix is not a match
        ({"service": "=~out"}, False),
        ({"service": "=~checkout|cart"}, True),
        ({"service": "!=canary"}, True),
        ({"service": "!=checkout"}, False),
        ({"service": "!~test-.*"}, True),
        ({"service": "!~check.*"}, False),
        ({"service": "checkout", "env": "=~prod.*"}, True),
        ({"service": "checkout", "env": "staging"}, False),
    ],
)
def test_matcher_forms(spec: dict[str, str], expected: bool) -> None:
    assert compile_matchers(spec).matches(LABELS) is expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"track": "!=canary"}, True),
        ({"track": ""}, True),
        ({"track": "=~"}, True),
        ({"track": "=~.*"}, True),
        ({"track": "=~.+"}, False),
        ({"track": "!~.+"}, True),
        ({"track": "stable"}, False),
    ],
)
def test_missing_label_is_the_empty_string(spec: dict[str, str], expected: bool) -> None:
    assert compile_matchers(spec).matches(LABELS) is expected


def test_regex_dot_matches_newline_like_prometheus() -> None:
    assert compile_matchers({"msg": "=~a.b"}).matches({"msg": "a\nb"})


def test_parse_matcher_reads_operator_prefixes() -> None:
    assert parse_matcher("a", "x").op == "="
    assert parse_matcher("a", "=~x").op == "=~"
    assert parse_matcher("a", "!~x").op == "!~"
    assert parse_matcher("a", "!=x").value == "x"
    assert str(compile_matchers({"a": "x", "b": "=~y.*"})) == '{a="x", b=~"y.*"}'


def test_bad_regex_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match=r"service: invalid regex '\(check'"):
        compile_matchers({"service": "=~(check"})


@pytest.mark.parametrize("label", ["", "1abc", "a-b", "a.b"])
def test_bad_label_name_is_rejected(label: str) -> None:
    with pytest.raises(ValueError, match="not a valid label name"):
        compile_matchers({label: "x"})


def test_non_string_matcher_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected a string matcher, got int"):
        compile_matchers({"port": 8080})  # type: ignore[dict-item]


def test_empty_spec_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one"):
        compile_matchers({})


def test_first_match_follows_catalog_order() -> None:
    services: list[tuple[str, Matcher]] = [
        ("checkout-canary", compile_matchers({"service": "checkout", "pod": "=~.*-canary-.*"})),
        ("checkout", compile_matchers({"service": "checkout"})),
        ("anything-checkout", compile_matchers({"service": "=~check.*"})),
    ]

    assert first_match(LABELS, services) == "checkout"
    assert first_match({**LABELS, "pod": "checkout-canary-1"}, services) == "checkout-canary"
    assert first_match({"service": "checkout-v2"}, services) == "anything-checkout"
    assert first_match({"service": "cart"}, services) is None
    assert first_match(LABELS, []) is None


values = st.text(alphabet="abc-", max_size=6)


@given(values, values)
def test_negations_are_complements(value: str, actual: str) -> None:
    labels = {"l": actual}
    pattern = re.escape(value)
    assert compile_matchers({"l": value}).matches(labels) != compile_matchers(
        {"l": f"!={value}"}
    ).matches(labels)
    assert compile_matchers({"l": f"=~{pattern}"}).matches(labels) != compile_matchers(
        {"l": f"!~{pattern}"}
    ).matches(labels)


@given(values, values)
def test_escaped_regex_equals_equality(value: str, actual: str) -> None:
    labels = {"l": actual}
    assert compile_matchers({"l": f"=~{re.escape(value)}"}).matches(labels) == (actual == value)
