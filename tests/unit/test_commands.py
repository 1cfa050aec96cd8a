"""The `/rollback` grammar: every form, every mistake, and no crash on any text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollback_bot.ids import (
    format_incident_id,
    format_rollback_id,
    parse_incident_id,
    parse_rollback_id,
)
from rollback_bot.slack.commands import (
    HELP_TEXT,
    VERBS,
    Abort,
    Approve,
    CommandError,
    DeclareMitigated,
    Deny,
    Export,
    Help,
    History,
    KillFlag,
    MarkRelease,
    Note,
    Pause,
    RequestRollback,
    Resume,
    ResumeGitOps,
    Status,
    ambiguous_revision,
    parse,
    unknown_revision,
)
from rollback_bot.slack.ui.mrkdwn import code

SERVICES = ("checkout", "payments", "search", "status")
COMMAND_TYPES = (
    Help,
    RequestRollback,
    Approve,
    Deny,
    Pause,
    Resume,
    Abort,
    ResumeGitOps,
    Status,
    History,
    Export,
    KillFlag,
    MarkRelease,
    DeclareMitigated,
    Note,
)


def p(text: str) -> object:
    return parse(text, services=SERVICES)


def error(text: str, **kwargs: object) -> CommandError:
    with pytest.raises(CommandError) as caught:
        parse(text, services=SERVICES, **kwargs)  # type: ignore[arg-type]
    return caught.value


# --- requests ------------------------------------------------------------------


def test_bare_service_requests_rollback_to_last_stable() -> None:
    assert p("checkout") == RequestRollback("checkout")


def test_request_with_every_option() -> None:
    got = p('checkout --to 41 --strategy gradual --reason "5xx after deploy"')
    assert got == RequestRollback("checkout", 41, "gradual", "5xx after deploy")


def test_options_in_any_order_and_with_equals() -> None:
    got = p('checkout --reason "bad" --strategy=blue-green --to=#40')
    assert got == RequestRollback("checkout", 40, "blue-green", "bad")


def test_unquoted_reason_runs_to_the_next_option() -> None:
    got = p("checkout --reason it's broken since the deploy --to 41")
    assert got == RequestRollback("checkout", 41, None, "it's broken since the deploy")


def test_image_tag_revision_is_kept_for_the_service_to_resolve() -> None:
    assert p("checkout --to v1.4.2") == RequestRollback("checkout", "v1.4.2")
    ref = "registry.example.com/shop/checkout:v1.4.2"
    assert p(f"checkout --to {ref}") == RequestRollback("checkout", ref)


def test_service_names_match_case_insensitively() -> None:
    assert p("Checkout") == RequestRollback("checkout")


def test_typographic_quotes_and_dashes_from_clients_are_understood() -> None:
    got = p("checkout \u2014to 41 --reason \u201cbad deploy\u201d")
    assert got == RequestRollback("checkout", 41, None, "bad deploy")


def test_slack_escapes_are_undone() -> None:
    got = p('checkout --reason "latency &gt; 2s &amp; errors"')
    assert isinstance(got, RequestRollback)
    assert got.reason == "latency > 2s & errors"


def test_strategy_spellings() -> None:
    for spelling in ("blue-green", "bluegreen", "blue_green", "Blue-Green"):
        got = p(f"checkout --strategy {spelling}")
        assert isinstance(got, RequestRollback)
        assert got.strategy == "blue-green"


def test_service_named_like_a_verb_needs_the_request_form() -> None:
    assert p("status") == Status()
    assert p("request status --to 3") == RequestRollback("status", 3)
    assert "/rollback request &lt;service&gt;" in HELP_TEXT


def test_drill_is_a_request_marked_as_drill() -> None:
    assert p("drill checkout") == RequestRollback("checkout", drill=True)
    assert p("drill checkout --to 40 --strategy instant") == RequestRollback(
        "checkout", 40, "instant", drill=True
    )


# --- verbs on ids ----------------------------------------------------------------


@pytest.mark.parametrize("token", ["R-12", "r12", "r-12", "#12", "12"])
def test_rollback_id_spellings(token: str) -> None:
    assert p(f"approve {token}") == Approve(12)
    assert p(f"pause {token}") == Pause(12)
    assert p(f"resume {token}") == Resume(12)
    assert p(f"abort {token}") == Abort(12)


def test_deny_with_and_without_reason() -> None:
    assert p("deny R-3") == Deny(3)
    assert p("deny R-3 wrong revision, use 40") == Deny(3, "wrong revision, use 40")
    assert p('deny 3 --reason "not now"') == Deny(3, "not now")
    assert p("deny 3 use --to 40 instead") == Deny(3, "use --to 40 instead")
    assert error('deny 3 "unbalanced').usage == "/rollback deny <id> [reason]"


def test_status_forms() -> None:
    assert p("status") == Status()
    assert p("status checkout") == Status(target="checkout", service="checkout")
    assert p("status r12") == Status(target="R-12", rollback_id=12)
    assert p("status inc-7") == Status(target="INC-7", incident_id=7)


def test_history_export_flag_help() -> None:
    assert p("history payments") == History("payments")
    assert p("export INC-7") == Export(7, "md")
    assert p("export inc7 --format json") == Export(7, "json")
    assert p("export 7 --format=md") == Export(7, "md")
    assert p("flag checkout new-pricing") == KillFlag("checkout", "new-pricing")
    assert p("") == Help()
    assert p("  help ") == Help()


def test_id_helpers_round_trip() -> None:
    assert format_rollback_id(12) == "R-12"
    assert format_incident_id(7) == "INC-7"
    assert parse_rollback_id(format_rollback_id(12)) == 12
    assert parse_incident_id(format_incident_id(7)) == 7
    assert parse_rollback_id("INC-7") is None
    assert parse_rollback_id("0") is None
    assert parse_incident_id("R-7") is None


# --- mistakes ----------------------------------------------------------------------


def test_unknown_service_suggests_the_closest() -> None:
    err = error("chekout --to 41")
    assert str(err).startswith("Unknown service `chekout`. Did you mean `checkout`?")
    assert "Usage: `/rollback &lt;service&gt; [--to &lt;revision&gt;]" in str(err)


def test_unknown_verb_suggests_the_verb_and_its_form() -> None:
    err = error("aprove R-12")
    assert "Unknown command `aprove`. Did you mean `approve`?" in str(err)
    assert err.usage == "/rollback approve <id>"


def test_nothing_close_lists_known_services() -> None:
    err = error("zzzz")
    assert "`checkout`" in err.message and "/rollback help" in err.message


@pytest.mark.parametrize(
    ("text", "expected", "usage"),
    [
        ("approve", "needs a rollback id", "/rollback approve <id>"),
        ("approve INC-7", "is an incident", "/rollback approve <id>"),
        ("abort twelve", "not a rollback id", "/rollback abort <id>"),
        ("pause 12 now", "Unexpected `now`", "/rollback pause <id>"),
        ("history", "needs a service", "/rollback history <service>"),
        ("history chekout", "Did you mean `checkout`", "/rollback history <service>"),
        ("export", "needs an incident id", "/rollback export <incident>"),
        ("export INC-7 --format pdf", "Unknown format `pdf`", "/rollback export <incident>"),
        ("export R-x", "not an incident id", "/rollback export <incident>"),
        ("flag checkout", "needs a flag name", "/rollback flag <service> <flag>"),
        ("flag", "needs a service", "/rollback flag <service> <flag>"),
        ("status chk", "neither a service nor an id", "/rollback status [service|id]"),
        ("drill", "Which service?", "/rollback drill <service>"),
        ("drill checkout --reason x", "Unknown option `--reason`", "/rollback drill <service>"),
    ],
)
def test_mistakes_say_what_and_show_the_form(text: str, expected: str, usage: str) -> None:
    err = error(text)
    assert expected in err.message
    assert err.usage.startswith(usage)
    # The form is a code span with < and > escaped: Slack would read <service> as a link.
    assert str(err) == f"{err.message} Usage: {code(err.usage)}"
    assert "<" not in str(err)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("checkout --to", "`--to` needs a value"),
        ("checkout --to --reason x", "`--to` needs a value"),
        ("checkout --to 0", "start at 1"),
        ("checkout --to 'a b'", "neither a revision number"),
        ("checkout --to 1 --to 2", "given twice"),
        ("checkout --strategy fast", "Unknown strategy `fast`"),
        ("checkout --strategy gradul", "Did you mean `gradual`"),
        ("checkout --strat gradual", "Did you mean `--strategy`"),
        ("checkout oops", "Unexpected `oops`"),
        ("--to 41", "Which service?"),
        ('checkout --reason "unbalanced', "quote"),
    ],
)
def test_request_mistakes(text: str, expected: str) -> None:
    assert expected in error(text).message


def test_flag_names_are_checked_when_known() -> None:
    flags = {"checkout": ["new-pricing", "fast-cart"]}
    got = parse("flag checkout fast-cart", services=SERVICES, flags=flags)
    assert got == KillFlag("checkout", "fast-cart")
    err = error("flag checkout new-prcing", flags=flags)
    assert "Did you mean `new-pricing`" in err.message
    err = error("flag payments x", flags=flags)
    assert "has no flags" in err.message


def test_empty_catalog_says_so() -> None:
    with pytest.raises(CommandError) as caught:
        parse("checkout", services=())
    assert "No services are in the catalog" in caught.value.message


def test_revision_errors_for_the_service_layer() -> None:
    err = ambiguous_revision("checkout", "latest", [40, 41])
    assert "several revisions" in str(err) and "40, 41" in str(err)
    err = unknown_revision("checkout", 99, [40, 41, 42])
    assert "`99` is not a revision of `checkout`" in str(err)
    assert "/rollback history checkout" in str(err)


def test_help_lists_every_verb_with_an_example() -> None:
    for verb in ("approve", "deny", "pause", "resume", "abort", "status", "history"):
        assert f"/rollback {verb}" in HELP_TEXT
    for verb in ("drill", "export", "flag", "help"):
        assert f"/rollback {verb}" in HELP_TEXT
    for entry in VERBS:
        assert entry.example in HELP_TEXT
        # Every example in the help parses.
        assert isinstance(p(entry.example.removeprefix("/rollback")), COMMAND_TYPES)


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_parse_never_raises_anything_but_command_error(text: str) -> None:
    try:
        command = parse(text, services=SERVICES)
    except CommandError as err:
        assert str(err).endswith("`") and "Usage: `/rollback" in str(err)
    else:
        assert isinstance(command, COMMAND_TYPES)


_WORDS = st.sampled_from(
    ["checkout", "approve", "deny", "--to", "--reason", "--strategy", "--format", "R-1", "'", '"']
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_WORDS, st.text(max_size=8)), max_size=8))
def test_parse_never_crashes_on_near_commands(words: list[str]) -> None:
    try:
        command = parse(" ".join(words), services=SERVICES)
    except CommandError as err:
        assert err.usage.startswith("/rollback")
    else:
        assert isinstance(command, COMMAND_TYPES)


def test_mark_and_mitigated_and_the_known_bad_override_parse() -> None:
    assert p("mark checkout 2 bad crashes on start") == MarkRelease(
        "checkout", 2, "bad", "crashes on start"
    )
    assert p("mark Checkout #3 GOOD") == MarkRelease("checkout", 3, "good", None)
    assert p("mitigated INC-4 error rate normal") == DeclareMitigated(4, "error rate normal")
    assert p("checkout --to 2 --force-bad --reason x") == RequestRollback(
        "checkout", to_revision=2, reason="x", force_bad=True
    )
    with pytest.raises(CommandError, match="say `good` or `bad`"):
        p("mark checkout 2 maybe")
    with pytest.raises(CommandError, match="not a revision number"):
        p("mark checkout v2 bad")
    with pytest.raises(CommandError, match="needs an incident id"):
        p("mitigated")


def test_resume_gitops_takes_one_rollback_id() -> None:
    assert p("resume-gitops R-7") == ResumeGitOps(7)
    with pytest.raises(CommandError):
        p("resume-gitops")


def test_note_keeps_the_text_as_typed() -> None:
    assert p('note INC-7 it\'s "odd": <!channel>  twice') == Note(
        7, 'it\'s "odd": <!channel>  twice'
    )
    assert p("NOTE 7 &lt;b&gt; &amp; more") == Note(7, "<b> & more")
    assert p('note inc7 an unbalanced " quote') == Note(7, 'an unbalanced " quote')


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("note", "needs an incident id"),
        ("note checkout hello", "is not an incident id"),
        ("note INC-7", "What is the note?"),
        ("note INC-7    ", "What is the note?"),
    ],
)
def test_note_mistakes_are_explained(text: str, says: str) -> None:
    with pytest.raises(CommandError, match=says):
        p(text)
