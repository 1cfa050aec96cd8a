"""What counts as a secret: names by pattern, values by their look; both configurable."""

from __future__ import annotations

from rollback_bot.redaction import MARK, Redactor
from rollback_bot.slack.ui.mrkdwn import escape


def test_names_by_pattern_are_secret_whatever_their_case() -> None:
    r = Redactor()
    for name in ("DB_PASSWORD", "api_token", "SLACK_SECRET", "AWS_ACCESS_KEY_ID", "credentials"):
        assert r.secret_name(name), name
    for name in ("MODE", "TIMEOUT", "replicas"):
        assert not r.secret_name(name), name
    assert r.value("DB_PASSWORD", "hunter2") == MARK
    assert r.value("MODE", "fast") == "fast"


def test_values_that_look_like_credentials_are_hidden_inside_text() -> None:
    r = Redactor()
    text = (
        "a xoxb-123-abc b ghp_" + "x" * 36 + " c AKIAABCDEFGHIJKLMNOP d "
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- e"
    )
    assert r.text(text) == f"a {MARK} b {MARK} c {MARK} d {MARK} e"
    assert r.text("registry/checkout:v1.4.2") == "registry/checkout:v1.4.2"


def test_trees_hide_by_name_and_by_value_but_keep_the_bots_own_fields() -> None:
    r = Redactor()
    tree = {"api_key": "v", "key": "NEW_PRICING", "nested": [{"note": "xoxp-1-2"}]}
    assert r.tree(tree) == {"api_key": MARK, "key": "NEW_PRICING", "nested": [{"note": MARK}]}


def test_patterns_are_configurable() -> None:
    r = Redactor(names=["*PIN*"], values=[r"tok-\d+"])
    assert r.secret_name("USER_PIN") and not r.secret_name("DB_PASSWORD")
    assert r.text("x tok-42 y") == f"x {MARK} y"


def test_slack_text_never_carries_a_token_shape() -> None:
    assert escape("leaked xoxb-1-2-3 here") == f"leaked {MARK} here"
