"""The postmortem export read from a real database: metrics on an injected clock, drills
left out of them, the Mermaid picture, the inline SVG page, the schema, people by name."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from slack_sdk import WebClient

from rollback_bot.cli import main
from rollback_bot.clock import FakeClock
from rollback_bot.incidents import postmortem, postmortem_load, postmortem_picture
from rollback_bot.incidents.queries import Queries
from rollback_bot.slack.people import SlackPeople
from rollback_bot.storage import db
from sandbox.slack import SlackStandIn

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SCHEMA = postmortem.schema()


def _validate(doc: Any) -> None:
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(doc)


def _rollback(u: db.UnitOfWork, clock: FakeClock, incident_id: int, **fields: Any) -> int:
    row = u.rollbacks.add(
        incident_id=incident_id,
        service="checkout",
        environment="production",
        strategy="instant",
        requested_by=fields.pop("requested_by"),
        created_at=clock.now(),
        updated_at=clock.now(),
        plan={"changes": ["~ image: shop:2.0 -> shop:1.9", "~ configmap checkout-config: LEVEL"]},
        **fields,
    )
    u.flush()
    return row.id


@pytest.fixture
def incident(uow: db.UnitOfWorkFactory) -> int:
    """An incident told minute by minute on a fake clock, with a drill inside it.

    0s alert fires; 20s a drill is requested (a person, but a drill: no acknowledgement);
    90s Alice requests the real rollback (acknowledgement); 120s Bob approves; then the
    rollback runs, its health gate passes, 175s the incident is mitigated on that evidence,
    200s Carol adds a note, 300s the alert resolves and so does the incident.
    """
    clock = FakeClock(T0)
    with uow() as u:
        inc = u.incidents.add(service="checkout", title="HighErrorRate on checkout", opened_at=T0)
        u.flush()
        u.alert_groups.add(
            group_key="g1",
            incident_id=inc.id,
            service="checkout",
            alertname="HighErrorRate",
            severity="critical",
            first_seen=T0,
            last_seen=T0,
            source="alertmanager",
        )

        def log(at: float, actor: str, kind: str, summary: str, **kw: Any) -> None:
            u.timeline.append(
                at=clock.advance(at - _elapsed(clock)),
                actor=actor,
                kind=kind,
                summary=summary,
                incident_id=inc.id,
                service="checkout",
                **kw,
            )

        log(0, "alertmanager", "alert.firing", "HighErrorRate firing on checkout/production")
        log(10, "rollback-bot", "incident.opened", f"INC-{inc.id} opened")
        clock.advance(10)
        drill = _rollback(u, clock, inc.id, requested_by="U0DRILL", state="done", drill=True)
        log(20, "U0DRILL", "rollback.requested", "DRILL: U0DRILL requested", rollback_id=drill)
        log(25, "rollback-bot", "rollback.done", "DRILL: R verified", rollback_id=drill)
        clock.advance(65)
        real = _rollback(
            u,
            clock,
            inc.id,
            requested_by="U0ALICE",
            state="done",
            from_revision="5",
            to_revision="4",
            from_image="shop:2.0",
            to_image="shop:1.9",
            approvals_required=1,
            finished_at=T0 + timedelta(seconds=170),
        )
        log(
            90,
            "U0ALICE",
            "rollback.requested",
            "U0ALICE requested instant rollback",
            rollback_id=real,
        )
        u.approvals.add(
            rollback_id=real, actor="U0BOB", decision="approve", at=T0.replace(minute=2)
        )
        log(120, "U0BOB", "rollback.approved", "U0BOB approved (1/1)", rollback_id=real)
        log(130, "rollback-bot", "rollback.executing", "executing", rollback_id=real)
        log(140, "rollback-bot", "kube.changed", "patch Deployment/checkout", rollback_id=real)
        log(150, "rollback-bot", "rollback.verifying", "verifying", rollback_id=real)
        log(160, "rollback-bot", "health.check", "health check alerts: 0; passed", rollback_id=real)
        log(170, "rollback-bot", "rollback.done", "verified", rollback_id=real)
        log(
            175,
            "rollback-bot",
            "incident.mitigated",
            "mitigated: alert checks clear",
            data={"rollback": real},
        )
        log(
            200,
            "U0CAROL",
            "note.added",
            "note by U0CAROL",
            data={"text": "customers saw 502s", "permalink": "https://x.slack.com/p1"},
        )
        log(300, "alertmanager", "alert.resolved", "HighErrorRate resolved")
        log(300, "rollback-bot", "incident.resolved", "resolved")
        inc.state = "resolved"
        inc.acknowledged_at, inc.acknowledged_by = T0.replace(second=20), "U0DRILL"
        inc.mitigated_at = T0.replace(minute=2, second=55)
        inc.resolved_at = T0.replace(minute=5)
        u.commit()
        return inc.id


def _elapsed(clock: FakeClock) -> float:
    return (clock.now() - T0).total_seconds()


@pytest.fixture
def queries(uow: db.UnitOfWorkFactory) -> Queries:
    return Queries(uow=uow, clock=FakeClock(T0))


def test_metrics_from_the_first_alert_with_the_drill_left_out(
    queries: Queries, incident: int
) -> None:
    doc = postmortem.document(queries.postmortem_document(incident))

    # Acknowledged by Alice at 90 s, not by the drill at 20 s (which set acknowledged_at).
    assert doc["metrics"] == {
        "time_to_acknowledge_seconds": 90.0,
        "time_to_mitigate_seconds": 175.0,
        "time_to_resolve_seconds": 300.0,
    }
    s = doc["summary"]
    assert s["first_human_action_by"] == {"id": "U0ALICE", "name": None}
    assert s["severity"] == "critical"
    assert s["trigger"] == "alert HighErrorRate (critical)"
    assert s["environment"] == "production"
    assert s["outcome"].startswith("resolved (rolled back by R-")
    assert len(s["drills"]) == 1
    drill_id = s["drills"][0]
    assert drill_id not in s["outcome"]
    drill_rows = [e for e in doc["timeline"] if e["rollback"] == drill_id]
    assert drill_rows and all(e["drill"] for e in drill_rows)
    _validate(doc)


def test_a_drill_that_cleared_the_gate_is_no_mitigation(
    queries: Queries, incident: int, uow: db.UnitOfWorkFactory
) -> None:
    pm = queries.postmortem_document(incident)
    drill = int(pm.head["summary"]["drills"][0].split("-")[1])
    events = [
        e
        for e in pm.events
        if e.kind != "incident.mitigated"  # replaced by a drill's mitigation below
    ]
    fake = postmortem_load.Event(
        T0.replace(second=26),
        "rollback-bot",
        "incident.mitigated",
        "m",
        None,
        json.dumps({"rollback": drill}),
    )
    with uow(read_only=True) as u:
        row = postmortem_load.incident(u.session, incident)
        rollbacks = postmortem_load.rollbacks(u.session, incident)
    assert row is not None
    again = postmortem.analyse(
        row, sorted([*events, fake], key=lambda e: e.at), rollbacks=rollbacks
    )
    # The drill's mitigation at 26 s does not count: the resolution at 300 s is the evidence.
    assert again.head["metrics"]["time_to_mitigate_seconds"] == 300.0


def test_rollbacks_notes_and_follow_ups_in_the_markdown(queries: Queries, incident: int) -> None:
    _name, text = queries.postmortem(incident, "md")
    assert "- Severity: critical" in text
    assert "- Time to acknowledge: 1m 30s" in text
    assert "- Time to mitigate: 2m 55s" in text
    assert "- Time to resolve: 5m 00s" in text
    assert "(DRILL, not counted)" in text
    assert "- Approvals: approve by U0BOB" in text
    assert "- Revision: 5 -> 4" in text
    assert "- Image: shop:2.0 -> shop:1.9" in text
    assert "~ configmap checkout-config: LEVEL" in text
    assert "customers saw 502s ([message](https://x.slack.com/p1))" in text
    assert "## What went wrong / follow-ups" in text
    # A kind the postmortem does not know (notes come from another module) still shows.
    assert "| note.added |" in text


def test_the_markdown_holds_a_mermaid_gantt_of_the_incident(
    queries: Queries, incident: int
) -> None:
    _name, text = queries.postmortem(incident, "md")
    block = re.search(r"```mermaid\n(.*?)\n```", text, re.S)
    assert block is not None
    chart = block.group(1).splitlines()
    assert chart[0] == "gantt"
    assert "    dateFormat YYYY-MM-DD HH:mm:ss" in chart
    sections = [line.strip().removeprefix("section ") for line in chart if "section" in line]
    assert sections[:2] == ["Alerts", "People"]
    assert "Health" in sections and "Incident" in sections
    assert any(s.startswith("R-") and s.endswith("(drill)") for s in sections)
    assert "    acknowledged by U0ALICE :milestone, 2026-11-25 09:01:30, 0s" in chart
    assert "    mitigated :milestone, 2026-11-25 09:02:55, 0s" in chart
    assert "    resolved :milestone, 2026-11-25 09:05:00, 0s" in chart
    assert "    alerts firing :crit, 2026-11-25 09:00:00, 300s" in chart
    # every task line parses as Mermaid's "name :tags, start, duration"
    for line in chart:
        if (
            line.startswith("    ")
            and ":" in line
            and not line.strip().startswith(("title", "dateFormat", "axisFormat", "section"))
        ):
            assert re.fullmatch(
                r"    [^:#;]+ :(?:(?:milestone|crit|done|active), )*"
                r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d, \d+s",
                line,
            ), line


def test_the_html_page_is_self_contained_with_an_inline_svg(
    queries: Queries, incident: int
) -> None:
    _name, page = queries.postmortem(incident, "html")
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "<link" not in page and " src=" not in page
    svg_text = re.search(r"<svg .*?</svg>", page, re.S)
    assert svg_text is not None
    svg = ET.fromstring(svg_text.group(0))
    ns = {"s": "http://www.w3.org/2000/svg"}
    lanes = [g.get("data-lane") for g in svg.findall("s:g[@class='lane']", ns)]
    assert lanes[:2] == ["Alerts", "People"] and lanes[-2:] == ["Health", "Incident"]
    milestones = svg.findall("s:g[@class='mark milestone']", ns)
    labels = {m.find("s:text", ns).text for m in milestones}  # type: ignore[union-attr]
    assert {"acknowledged by U0ALICE", "mitigated", "resolved"} <= labels
    assert all(m.find("s:polygon", ns) is not None for m in milestones)
    spans = svg.findall("s:g[@class='mark span']", ns)
    assert any(s.get("data-tone") == "drill" for s in spans)
    assert all(float(s.find("s:rect", ns).get("width")) > 0 for s in spans)  # type: ignore[arg-type,union-attr]
    assert "customers saw 502s" in page
    assert '<tr class="drill">' in page


def test_every_json_export_follows_the_schema(
    queries: Queries, incident: int, uow: db.UnitOfWorkFactory
) -> None:
    _name, compact = queries.postmortem(incident, "json")
    doc = json.loads(compact)
    assert doc["schema_version"] == postmortem.SCHEMA_VERSION
    _validate(doc)
    pm = queries.postmortem_document(incident)
    pretty = json.loads("".join(postmortem.iter_json(pm, pretty=True)))
    assert pretty == doc  # the streamed compact writer and the indented one agree
    note = next(e for e in doc["timeline"] if e["kind"] == "note.added")
    assert note["data"] == {"text": "customers saw 502s", "permalink": "https://x.slack.com/p1"}
    # and an empty incident
    with uow() as u:
        empty = u.incidents.add(service="cart", title="quiet", opened_at=T0)
        u.commit()
        empty_id = empty.id
    _validate(json.loads(queries.postmortem(empty_id, "json")[1]))


def test_a_json_export_of_many_events_follows_the_schema(uow: db.UnitOfWorkFactory) -> None:
    with uow() as u:
        inc = u.incidents.add(service="checkout", title="storm", opened_at=T0)
        u.flush()
        for i in range(300):
            u.timeline.append(
                at=T0.replace(second=i % 60, minute=i // 60),
                actor="rollback-bot" if i % 3 else "U0ALICE",
                kind="health.check" if i % 2 else "alert.firing",
                summary=f"event {i}: failed" if i % 5 == 0 else f"event {i}",
                incident_id=inc.id,
                data={"i": i},
            )
        u.commit()
        incident_id = inc.id
    q = Queries(uow=uow, clock=FakeClock(T0))
    doc = json.loads(q.postmortem(incident_id, "json")[1])
    _validate(doc)
    assert len(doc["timeline"]) == 300
    pm = q.postmortem_document(incident_id)
    # The streamed writer (rows in chunks, encodings shared by rows) writes exactly what
    # json.dumps writes for each row, ``data`` spliced in as stored.
    rows = []
    for row in pm.timeline(decode=False):
        stored = row.pop("_data_json")
        rows.append(json.dumps(row, separators=(",", ":"))[:-1] + f',"data":{stored}}}')
    head = json.dumps(pm.head, separators=(",", ":"))
    expected = head[:-1] + ',"timeline":[' + ",\n".join(rows) + "]}\n"
    assert "".join(postmortem.iter_json(pm)) == expected
    marks = pm.marks
    # a lane keeps PER_LANE marks and one "+N more" span
    health = [m for m in marks if m.lane == postmortem_picture.HEALTH]
    assert len(health) == postmortem_picture.PER_LANE + 1
    assert health[-1].label == f"+{150 - postmortem_picture.PER_LANE} more"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    users = {
        "U0ALICE": {"name": "alice", "real_name": "Alice Liddell"},
        "U0BOB": {"name": "bob", "real_name": "Bob Builder"},
    }
    with SlackStandIn(users=users) as standin:
        yield standin


def test_people_by_name_through_users_info_with_ids_when_it_fails(
    queries: Queries, incident: int, slack: SlackStandIn
) -> None:
    people = SlackPeople(WebClient(token=slack.bot_token, base_url=slack.url))
    slack.inject("users.info", status=200, error="ratelimited", count=1)

    first = postmortem.document(queries.postmortem_document(incident, names=people))
    # One look-up failed (its person stays an id); U0CAROL and U0DRILL are unknown to Slack.
    names = {p["id"]: p["name"] for p in first["people"]}
    assert set(names) == {"U0ALICE", "U0BOB", "U0CAROL", "U0DRILL"}
    failed = [p for p in ("U0ALICE", "U0BOB") if names[p] is None]
    assert len(failed) == 1
    calls = len(slack.calls_for("users.info"))

    second = postmortem.document(queries.postmortem_document(incident, names=people))
    names = {p["id"]: p["name"] for p in second["people"]}
    assert names["U0ALICE"] == "Alice Liddell" and names["U0BOB"] == "Bob Builder"
    assert names["U0CAROL"] is None  # user_not_found: the id stands in
    # the failure was not cached (asked again), the success was (not asked again)
    asked = [c["args"].get("user") for c in slack.calls_for("users.info")[calls:]]
    assert sorted(asked) == sorted([*failed, "U0CAROL", "U0DRILL"])
    approved = next(e for e in second["timeline"] if e["kind"] == "rollback.approved")
    assert approved["actor"] == "U0BOB" and approved["actor_name"] == "Bob Builder"
    _validate(second)

    _name, text = queries.postmortem(incident, "md", names=people)
    assert "| Bob Builder (U0BOB) | rollback.approved |" in text
    assert "(first action by Alice Liddell (U0ALICE))" in text


def test_the_png_is_a_png(queries: Queries, incident: int) -> None:
    from PIL import Image

    pm = queries.postmortem_document(incident)
    data = postmortem_picture.png(pm.marks, title="INC")
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    import io

    image = Image.open(io.BytesIO(data))
    assert image.size[0] == postmortem_picture.WIDTH * 2
    # the mitigation diamond is drawn in its colour somewhere on the picture
    colours = {c for _n, c in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    assert (0x2E, 0x7D, 0x32) in colours


def test_cli_export_html_and_incidents_json(
    incident: int,
    migrated_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_url)
    target = tmp_path / "pm.html"
    assert main(["export", f"INC-{incident}", "--format", "html", "-o", str(target)]) == 0
    assert "<svg " in target.read_text()
    capsys.readouterr()

    assert main(["incidents", "--format", "json", "--service", "checkout"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["time_to_acknowledge_seconds"] == 90.0
    assert row["time_to_mitigate_seconds"] == 175.0
    assert row["outcome"].startswith("resolved (rolled back by R-")
    assert main(["incidents", "--service", "cart"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == []
    assert main(["incidents", "--since", "2026-11-26"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == []
    assert main(["incidents", "--since", "yesterday"]) == 2
    assert "--since 'yesterday'" in capsys.readouterr().err


def test_a_long_rollback_lists_its_first_steps_and_counts_the_rest() -> None:
    rb = postmortem.RollbackInfo(
        id=3,
        strategy="gradual",
        state="done",
        requested_by="U0ALICE",
        created_at=T0,
        finished_at=T0 + timedelta(seconds=300),
    )
    events = [
        postmortem_load.Event(
            T0 + timedelta(seconds=i), "rollback-bot", "rollback.step", "s", 3, None
        )
        for i in range(postmortem.STEP_LIMIT + 50)
    ]
    row = postmortem_load.IncidentRow(1, "checkout", "t", "open", T0, None, None, None, None)
    doc = postmortem.document(postmortem.analyse(row, events, rollbacks=[rb]))
    (r,) = doc["rollbacks"]
    assert len(r["steps"]) == postmortem.STEP_LIMIT and r["steps_omitted"] == 50
    # the last listed step lasts until the next one, listed or not
    assert r["steps"][-1]["duration_seconds"] == 1.0
    assert len(doc["timeline"]) == postmortem.STEP_LIMIT + 50
    _validate(doc)


def test_a_gitops_pause_nobody_resumed_is_a_follow_up_in_every_format(
    queries: Queries, incident: int, uow: db.UnitOfWorkFactory
) -> None:
    with uow() as u:
        (real, *_) = [r for r in u.rollbacks.list_for_incident(incident_id=incident) if not r.drill]
        u.timeline.append(
            at=T0 + timedelta(minutes=3),
            actor="rollback-bot",
            kind="gitops.paused",
            summary="Flux Kustomization flux-system/shop suspended",
            incident_id=incident,
            rollback_id=real.id,
            service="checkout",
            data={"follow_up": "Resume Flux Kustomization flux-system/shop once the fix is merged"},
        )
        u.commit()
    _name, md = queries.postmortem(incident, "md")
    command = f"/rollback resume-gitops R-{real.id}"
    assert (
        f"- [ ] Resume Flux Kustomization flux-system/shop once the fix is merged: `{command}`"
        in md
    )
    _name, html = queries.postmortem(incident, "html")
    assert (
        f"&#9744; Resume Flux Kustomization flux-system/shop once the fix is merged: `{command}`"
        in html
    )
    _name, raw = queries.postmortem(incident, "json")
    doc = json.loads(raw)
    _validate(doc)
    assert doc["follow_ups"] == [
        f"Resume Flux Kustomization flux-system/shop once the fix is merged: `{command}`"
    ]

    with uow() as u:
        u.timeline.append(
            at=T0 + timedelta(minutes=9),
            actor="U0BOB",
            kind="gitops.resumed",
            summary="resumed",
            incident_id=incident,
            rollback_id=real.id,
            service="checkout",
        )
        u.commit()
    assert json.loads(queries.postmortem(incident, "json")[1])["follow_ups"] == []


def test_events_are_in_time_order_ties_in_written_order(
    uow: db.UnitOfWorkFactory, migrated_url: str
) -> None:
    """Written out of time order, with ties: the session's reader and the CLI's (the
    standard library's sqlite3 on SQLite) both give time order, ties by id."""
    from rollback_bot.storage.reader import open_reader

    with uow() as u:
        incident = u.incidents.add(service="checkout", title="t", opened_at=T0)
        u.flush()
        for offset, summary in [(20, "third"), (10, "first"), (10, "second"), (30, "fourth")]:
            u.timeline.append(
                at=T0 + timedelta(seconds=offset),
                actor="U0ALICE",
                kind="note.added",
                summary=summary,
                incident_id=incident.id,
            )
        u.commit()
        incident_id = incident.id
    expected = ["first", "second", "third", "fourth"]
    with uow(snapshot=True) as u:
        assert [e.summary for e in postmortem_load.events(u.session, incident_id)] == expected
    with open_reader(migrated_url) as reader:
        found = postmortem_load.events(reader, incident_id)
    assert [e.summary for e in found] == expected
    assert [e.at for e in found] == sorted(e.at for e in found)
    assert all(e.at.tzinfo is UTC for e in found)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25 09:00:00.000000",
        "2026-11-25 09:00:01.000001",
        "0999-01-02 23:59:59.999999",
        "2026-11-25 09:00:01.120000",
        "2026-11-25 09:00:01",  # other spellings: isoformat() of what was read
        "2026-11-25T09:00:01.5",
        "2026-11-25 09:00:01.000001+02:00",
    ],
)
def test_an_events_time_text_is_its_isoformat(text: str) -> None:
    event = postmortem_load.Event(text, "U0A", "note.added", "s", None, None)
    assert event.at.tzinfo is not None
    assert event.iso == event.at.isoformat()
    stored = postmortem_load.Event(event.at, "U0A", "note.added", "s", None, None)
    assert stored.iso == event.iso


def test_the_json_writer_encodes_every_character_as_json_dumps_does() -> None:
    summaries = [chr(c) for c in range(160)] + [
        "plain ascii",
        'a "quoted" word',
        "back\\slash",
        "tab\tand\nnewline",
        "del \x7f",
        "caf\u00e9",
        "snow \u2603",
        "emoji \U0001f600",
        "",
    ]
    events = [
        postmortem_load.Event(T0 + timedelta(seconds=i), "U0A", "note.added", s, None, None)
        for i, s in enumerate(summaries)
    ]
    row = postmortem_load.IncidentRow(1, "checkout", "t", "open", T0, None, None, None, None)
    pm = postmortem.analyse(row, events)
    doc = json.loads("".join(postmortem.iter_json(pm)))
    assert [e["summary"] for e in doc["timeline"]] == summaries
    rows = []
    for r in pm.timeline(decode=False):
        stored = r.pop("_data_json")
        rows.append(json.dumps(r, separators=(",", ":"))[:-1] + f',"data":{stored}}}')
    head = json.dumps(pm.head, separators=(",", ":"))
    assert (
        "".join(postmortem.iter_json(pm)) == head[:-1] + ',"timeline":[' + ",\n".join(rows) + "]}\n"
    )
