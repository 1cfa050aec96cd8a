"""What counts as a secret: names by pattern, values by their look; both configurable."""

from __future__ import annotations

import fnmatch
import re

import pytest

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


# -- the gates that let long texts skip the expressions change nothing -----------------------

_SECRETS_IN_TEXT = [
    "token xoxb-123-456-abcdef here",
    "xapp-1-A0-123",
    "ghp_" + "a" * 30,
    "github_pat_" + "b" * 30,
    "AKIA" + "A" * 16,
    "ASIA" + "B" * 16,
    "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
    "Authorization: Basic dXNlcjpwYXNz",
    "AUTHORIZATION=Bearer abc.def",
    "bearer abcdefghijklmnop",
    "DB_PASSWORD=hunter2",
    "db_passwd: 'x y'",
    'my.Secret = "value"',
    "apiToken:abc",
    "API_KEY=1",
    "credentials=abc",
    # case-insensitive matching pairs these with ASCII letters
    "\u017fecret=abc",
    "\u212aey=abc",
    "authorİzation: Bearer abcdefghijklmnopq",
    "passwd\u0131: x",
    "nothing secret-looking at all",
]
_FILLER = [
    "plain ascii text, rows and rows of it | 2026-11-25T09:00:00Z | rollback-bot |\n",
    "with non-ASCII … — → ü text in it, HighErrorRate on checkout\n",
]


@pytest.mark.parametrize("secret", _SECRETS_IN_TEXT)
@pytest.mark.parametrize("filler", _FILLER)
@pytest.mark.parametrize("where", ["start", "middle", "end", "none"])
def test_long_texts_are_redacted_exactly_as_without_the_gates(
    secret: str, filler: str, where: str
) -> None:
    redactor = Redactor(literals=["s3cr3t-literal-value"])
    pad = filler * 40
    text = {
        "start": secret + pad,
        "middle": pad + secret + pad,
        "end": pad + secret,
        "none": pad + "s3cr3t-literal-value " + pad,
    }[where]
    ungated = redactor._assignment_re.sub(redactor._assignment, redactor._value.sub(MARK, text))
    assert redactor.text(text) == ungated


def test_configured_value_patterns_are_never_gated() -> None:
    redactor = Redactor(values=[r"corp-[0-9]{6}"])
    text = "x" * 2000 + " corp-123456 " + "y" * 2000
    assert "corp-123456" not in redactor.text(text)


def test_plain_hints_are_searched_as_literals_and_find_what_the_expression_finds() -> None:
    from rollback_bot.redaction import _PLAIN, _searches

    hints = ["github_pat_", "-----BEGIN ", re.escape("a.b*c\\d (x)"), "x(?:ox|app-)", "gh[pousr]_"]
    assert [bool(_PLAIN.fullmatch(h)) for h in hints] == [True, True, True, False, False]
    texts = [b"", b"github_pat_1", b"a -----BEGIN x", b"a.b*c\\d (x)", b"abbbc", b"xapp-", b"ghs_"]
    for hint, search in zip(hints, _searches(hints), strict=True):
        for text in texts:
            assert bool(search(text)) == bool(re.search(hint.encode(), text)), (hint, text)
