"""What counts as a secret: names by pattern, values by their look; both configurable."""

from __future__ import annotations

import fnmatch

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


def test_name_patterns_are_globs_as_fnmatch_reads_them() -> None:
    patterns = ("*PASSWORD*", "DB_?", "[AB]_KEY", "EXACT", "*.SECRET")
    r = Redactor(names=patterns)
    names = ["password", "my_password_x", "db_1", "db_12", "a_key", "c_key", "exact", "exactly"]
    names += ["x.secret", "x.secrets", "", "a\npassword", "DB_"]
    for name in names:
        expected = any(fnmatch.fnmatchcase(name.upper(), p) for p in patterns)
        assert r.secret_name(name) is expected, name
    assert not Redactor(names=()).secret_name("PASSWORD")


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


def test_assignments_to_secret_names_in_free_text_hide_the_value() -> None:
    r = Redactor()
    assert r.text("DB_PASSWORD=hunter2 MODE=fast") == f"DB_PASSWORD={MARK} MODE=fast"
    assert r.text('export API_TOKEN="a b"; ls') == f"export API_TOKEN={MARK}; ls"
    assert r.text('{"db_password": "x1", "n": 1}') == f'{{"db_password": {MARK}, "n": 1}}'
    assert r.text("https://h/p?token=abc&x=1") == f"https://h/p?token={MARK}&x=1"
    # The bot's own fields stay readable.
    assert (
        r.text("key=NEW_PRICING flag_key: new-pricing") == "key=NEW_PRICING flag_key: new-pricing"
    )


def test_authorization_headers_and_bearer_tokens_are_hidden() -> None:
    r = Redactor()
    assert r.text("-H 'Authorization: Basic dXNlcjpwYXNz' x") == f"-H '{MARK}' x"
    assert r.text("Bearer eyJhbGciOiJIUzI1NiJ9.abc ok") == f"{MARK} ok"
    assert r.text("basic health checks, bearer tokens") == "basic health checks, bearer tokens"
    assert r.tree({"Authorization": "Basic x"}) == {"Authorization": MARK}


def test_the_bots_own_secrets_are_hidden_whatever_they_look_like() -> None:
    r = Redactor(literals=["sandbox-signing-secret", "short"])
    assert r.text("signed with sandbox-signing-secret, short") == f"signed with {MARK}, short"
