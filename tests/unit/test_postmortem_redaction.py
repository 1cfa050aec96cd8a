"""The export's last redaction: a compact JSON batch goes out as written only when none of
its parts holds a gate hint, and then redacting it would have changed nothing; the text is
always what redacting every batch whole writes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollback_bot import redaction
from rollback_bot.incidents import postmortem, postmortem_load
from rollback_bot.redaction import DEFAULT_VALUE_PATTERNS, MARK, Redactor

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

#: Stored text as an older writer, another tool or other patterns may have left it.
_STORED = [
    ("U0ALICE", "note.added", None, "pasted: SLACK_TOKEN=xoxb-123-456-abcdef | oops", None),
    ("rollback-bot", "health.check", 2, "Authorization: Bearer abcdefghijklmnop", None),
    ("rollback-bot", "kube.changed", 2, "set on checkout", '{"env":{"DB_PASSWORD":"hunter2"}}'),
    ("U0BOB", "rollback.approved", 2, "ok", '{"reason":"ghp_abcdefghijklmnopqrstuvwxyz"}'),
    (
        "kubernetes",
        "kube.manual_change",
        None,
        "-----BEGIN RSA KEY-----\nx\n-----END RSA KEY-----",
        None,
    ),
    ("U0CAROL", "note.added", None, "caf\u00e9 \u212aey=value", '{"text":"na\u00efve"}'),
    ("generic", "alert.firing", 1, 'say "x":\\ back\\slash', '"just a string"'),
    ("grafana", "alert.resolved", None, "plain text", '{"\u017fecret":"v"}'),
    ("U0ALICE", "note.added", None, "uses s3cr3t-literal-value here", "[1,2]"),
    ("rollback-bot", "health.check", 1, "AKIAABCDEFGHIJKLMNOP", "{}"),
]
_CLEAN = ("rollback-bot", "health.check", 1, "error rate 4.2% on checkout: failed", '{"n":1}')


def _postmortem(rows: list[tuple[str, str, int | None, str, str | None]]) -> Any:
    events = [
        postmortem_load.Event(T0 + timedelta(seconds=i, microseconds=i % 3), a, k, s, r, d)
        for i, (a, k, r, s, d) in enumerate(rows)
    ]
    incident = postmortem_load.IncidentRow(
        7, "checkout", "title with token=abc", "open", T0, None, None, None, None
    )
    rollbacks = [
        postmortem.RollbackInfo(id=1, strategy="instant", state="done", requested_by="U0A")
    ]
    rollbacks.append(
        postmortem.RollbackInfo(
            id=2, strategy="gradual", state="done", requested_by="U0B", drill=True
        )
    )
    names = {"U0ALICE": 'Alice "A" xoxb-9-9-9', "U0BOB": "B\u00f6b"}.get
    return postmortem.analyse(incident, events, rollbacks=rollbacks, names=names)


def _whole(pm: Any) -> str:
    return "".join(postmortem.redacted(postmortem.iter_json(pm)))


@pytest.fixture
def configured() -> Any:
    yield
    redaction.configure()


@pytest.mark.parametrize("secret_at", [None, 0, 700, 1999])
@pytest.mark.parametrize(
    "config",
    [
        {},
        {"literals": ["s3cr3t-literal-value"]},
        {"literals": ['quoted"secret:value']},  # a hint that can hold a delimiter
        {"values": [*DEFAULT_VALUE_PATTERNS, r"corp-[0-9]{6}"]},  # not gated at all
        {"names": ["*PASSWORD*", "*:*"]},
    ],
)
def test_the_json_export_is_what_redacting_it_whole_writes(
    configured: None, config: dict[str, Any], secret_at: int | None
) -> None:
    redaction.configure(**config)
    for secret in [None, *_STORED] if secret_at is not None else [None]:
        rows = [_CLEAN] * 2000
        if secret is not None and secret_at is not None:
            rows[secret_at] = secret
        pm = _postmortem(rows)
        text = "".join(postmortem.export(pm, "json"))
        assert text == _whole(pm)
        if secret is None:
            json.loads(text)
    pm = _postmortem(_STORED * 300)
    text = "".join(postmortem.export(pm, "json"))
    assert text == _whole(pm)
    for leaked in ["xoxb-123", "hunter2", "ghp_abc", "AKIAABC", "abcdefghijklmnop", "RSA KEY"]:
        assert leaked not in text
    assert text.count(MARK) > 0


def test_a_clean_storm_goes_out_without_scanning_the_writers_text() -> None:
    """The case the shortcut exists for: no hint anywhere, every batch as written."""
    scanned: list[str] = []

    class Counting(Redactor):
        def text(self, text: str) -> str:
            scanned.append(text)
            return super().text(text)

    pm = _postmortem([_CLEAN] * 3000)
    pm.head["incident"]["title"] = "a quiet title"
    units = postmortem._Units(Counting())
    released = list(postmortem._released(pm, units))
    assert "".join(released) == _whole(pm)
    assert units.pieces_clear
    assert len(released) > 3 and scanned == []


def test_every_run_between_delimiters_lies_within_one_part() -> None:
    """What makes the shortcut exact: each run of the JSON's non-delimiter characters is
    inside a part the redactor cleared (a row's time, summary, data, the head, a piece)."""
    recorded: list[str] = []

    class Recording(postmortem._Units):
        def piece(self, text: str) -> None:
            recorded.append(text)
            super().piece(text)

        def row(self, text: str) -> None:
            recorded.append(text)
            super().row(text)

    for rows in ([], [_CLEAN], _STORED * 40):
        recorded.clear()
        pm = _postmortem(rows)
        assert "".join(postmortem._released(pm, Recording(Redactor()))) == _whole(pm)
        text = "".join(postmortem.iter_json(pm))  # as written, before any redaction
        runs = re.split(f"[{re.escape(postmortem._JSON_DELIMITERS)}]+", text)
        assert runs
        for run in runs:
            assert any(run in part for part in recorded), run


def test_hints_hold_no_delimiter_unless_configured_so() -> None:
    assert Redactor().hints_stop_at(postmortem._JSON_DELIMITERS)
    assert Redactor(literals=["plain-secret-value"]).hints_stop_at(postmortem._JSON_DELIMITERS)
    assert not Redactor(literals=['a"quoted"one']).hints_stop_at(postmortem._JSON_DELIMITERS)
    assert not Redactor(names=["*A:B*"]).hints_stop_at(postmortem._JSON_DELIMITERS)
    assert not Redactor(values=[r"corp-\d+"]).hints_stop_at(postmortem._JSON_DELIMITERS)


def _characters(pattern: str) -> set[str]:
    """Every character a match of ``pattern`` can hold (literals, classes, branches)."""
    parser = re._parser  # type: ignore[attr-defined]
    constants = re._constants  # type: ignore[attr-defined]
    found: set[str] = set()

    def walk(items: Any) -> None:
        for op, av in items:
            if op is constants.LITERAL:
                found.add(chr(av))
            elif op is constants.IN:
                for kind, value in av:
                    if kind is constants.LITERAL:
                        found.add(chr(value))
                    elif kind is constants.RANGE:
                        found.update(chr(c) for c in range(value[0], value[1] + 1))
                    else:
                        raise AssertionError(f"a class the test does not read: {kind}")
            elif op is constants.SUBPATTERN:
                walk(av[-1])
            elif op is constants.BRANCH:
                for branch in av[1]:
                    walk(branch)
            elif op in (constants.MAX_REPEAT, constants.MIN_REPEAT):
                walk(av[2])
            else:
                raise AssertionError(f"an expression the test does not read: {op}")

    walk(parser.parse(pattern))
    return found


def test_the_default_hints_hold_only_the_characters_said() -> None:
    for hints in redaction._VALUE_HINTS.values():
        for regex, insensitive in hints:
            chars = _characters(regex)
            if insensitive:
                chars |= {c.upper() for c in chars}
            assert chars <= redaction._HINT_CHARACTERS, regex


def test_may_change_is_false_only_without_hints() -> None:
    r = Redactor(literals=["s3cr3t-literal-value"])
    assert not r.may_change('2026-11-25T09:00:00+00:00"error rate 4.2%"{"n":1}')
    for secret in [
        "xoxb-1-2",
        "ghp_x",
        "AKIA",
        "-----BEGIN ",
        "AUTHORIZATION",
        "Bearer",
        "password",
        "api_key",
        "s3cr3t-literal-value",
        "\u212aey",  # folds to an ASCII letter: the gates cannot tell
    ]:
        assert r.may_change(f"text {secret} text"), secret
