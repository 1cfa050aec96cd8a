"""``rollback-bot``: the commands in the shared contract.

serve (HTTP or Socket Mode), migrate, export, incidents, verify-timeline, check-config, demo.
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rollback_bot import __version__
from rollback_bot.command_env import CommandSettings, InvalidSetting, read_command_settings
from rollback_bot.ids import format_incident_id
from rollback_bot.logs import setup_logging
from rollback_bot.storage.errors import DatabaseNotMigrated

if TYPE_CHECKING:
    from rollback_bot.config import Settings

# Imports are made where a command needs them: the read commands (export, incidents,
# verify-timeline) load neither SQLAlchemy (on SQLite), pydantic, the catalog nor any client
# (tests/unit/test_cli_imports.py pins what they must not import).

log = logging.getLogger("rollback_bot.cli")


def _refuse(lines: Sequence[str]) -> int:
    for line in lines:
        print(f"rollback-bot: {line}", file=sys.stderr)
    return 2


def _warn(warnings: Sequence[str]) -> None:
    for warning in warnings:
        log.warning("%s", warning)
        print(f"rollback-bot: {warning}", file=sys.stderr, flush=True)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from rollback_bot import startup
    from rollback_bot.storage.lock import AlreadyRunning, PgSchedulerLock, SchedulerLock

    problems = startup.settings_problems(settings, socket_mode=args.socket_mode)
    if problems:
        return _refuse(problems)
    lock: SchedulerLock | PgSchedulerLock | None = SchedulerLock.for_database(settings.database_url)
    if lock is None and not settings.leader_election:
        lock = PgSchedulerLock.for_database(settings.database_url)
    try:
        if lock is not None:
            lock.acquire()
    except AlreadyRunning as exc:
        return _refuse([str(exc)])
    except Exception as exc:  # an unreadable lock file, a database that is not there
        return _refuse([f"cannot lock the database ({exc}): check DATABASE_URL"])
    try:
        return _serve_started(settings, args)
    finally:
        if lock is not None:
            lock.release()


def _serve_started(settings: Settings, args: argparse.Namespace) -> int:
    from kubernetes.config import ConfigException

    from rollback_bot import startup
    from rollback_bot.app import ServerThread, build
    from rollback_bot.catalog import CatalogError
    from rollback_bot.storage.errors import DatabaseNotMigrated
    from rollback_bot.web.http import create_web_app
    from rollback_bot.web.slack_app import create_bolt_app

    try:
        services = build(settings)
    except DatabaseNotMigrated as exc:
        return _refuse([str(exc)])
    except CatalogError as exc:
        return _refuse([f"{exc}\nrun `rollback-bot check-config` for details"])
    except ConfigException as exc:
        return _refuse([f"the Kubernetes configuration cannot be used: {exc}"])
    _warn([w for w in [startup.open_alerts_warning(settings)] if w])
    bolt = create_bolt_app(services)
    services.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = ServerThread(
        create_web_app(services, bolt), host=args.host, port=settings.port
    ).start()
    gc.freeze()
    gc.enable()
    print(f"rollback-bot listening on {server.url}", flush=True)
    # Asking Slack about every channel the catalog names is one round trip per channel
    # (50 channels: a quarter of a second here, seconds on Slack's rate limits); the
    # answers only ever become warnings, which nothing served depends on, so they are
    # asked after the listening line, beside the first requests.
    threading.Thread(
        target=lambda: _warn(startup.channel_warnings(services.slack, services.catalog)),
        name="channel-check",
        daemon=True,
    ).start()
    socket_handler = None
    if args.socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        socket_handler = SocketModeHandler(
            bolt, app_token=settings.slack_app_token.get_secret_value()
        )
        socket_handler.connect()  # type: ignore[no-untyped-call]
        print("rollback-bot connected in Socket Mode", flush=True)
    stop.wait()
    if socket_handler is not None:
        socket_handler.close()  # type: ignore[no-untyped-call]
    server.stop()
    services.stop()
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from rollback_bot.storage.engine import normalise_url
    from rollback_bot.storage.migrator import migrate

    migrate(settings.database_url)
    print(f"database at head: {_redact(normalise_url(settings.database_url))}")
    return 0


def _export(settings: CommandSettings, args: argparse.Namespace) -> int:
    from rollback_bot.ids import parse_incident_id
    from rollback_bot.incidents import postmortem

    incident = parse_incident_id(args.incident)
    if incident is None:
        print(
            f"rollback-bot: {args.incident!r} is not an incident id (INC-7 or 7)", file=sys.stderr
        )
        return 2
    pm = _read(
        settings, lambda db: _load_postmortem(db, incident, settings, args), check_schema=False
    )
    if pm is None:
        print(
            f"rollback-bot: There is no incident {format_incident_id(incident)}.", file=sys.stderr
        )
        return 1
    chunks = postmortem.export(pm, args.format, pretty=args.pretty)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.writelines(chunks)
        print(f"wrote {args.output}")
    else:
        sys.stdout.writelines(chunks)
    return 0


def _load_postmortem(
    db: Any, incident: int, settings: CommandSettings, args: argparse.Namespace
) -> Any:
    from rollback_bot.incidents import postmortem_load

    names = None if args.ids else _slack_names(settings)
    return postmortem_load.load(db, incident, names=names)


def _slack_names(settings: CommandSettings) -> Any:
    """users.info when a Slack token is configured; ids only otherwise."""
    if not settings.has_slack_token:
        return None
    from rollback_bot.app import slack_client
    from rollback_bot.config import load_settings
    from rollback_bot.slack.people import SlackPeople

    try:
        full = load_settings()  # the Slack client's settings (SLACK_API_URL...)
    except ValueError as exc:  # pydantic's ValidationError
        print(f"rollback-bot: invalid settings in the environment:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return SlackPeople(slack_client(full))


def _read(settings: CommandSettings, work: Any, *, check_schema: bool = True) -> Any:
    """Run ``work(reader)`` in a read-only transaction (``storage.reader``: the standard
    library's sqlite3 on a SQLite file, SQLAlchemy otherwise). ``check_schema=False``
    skips the schema check up front: only when a query fails is the schema asked about,
    to say what to run."""
    from rollback_bot.storage.reader import open_reader

    with open_reader(settings.database_url, check_schema=check_schema) as reader:
        return work(reader)


def _incidents(settings: CommandSettings, args: argparse.Namespace) -> int:
    from rollback_bot.incidents import postmortem_load
    from rollback_bot.incidents.postmortem import human_duration

    since = None
    if args.since:
        try:
            since = _parse_since(args.since)
        except ValueError:
            return _refuse([f"--since {args.since!r}: use a date like 2026-11-25"])
    rows = _read(
        settings,
        lambda db: postmortem_load.list_incidents(
            db, service=args.service, since=since, limit=args.limit
        ),
    )
    if args.format == "json":
        import json

        print(json.dumps([r.as_json() for r in rows], indent=2))
        return 0
    print(f"{'ID':<8} {'SERVICE':<20} {'OPENED':<26} {'STATE':<10} {'TTA':<10} {'TTM':<10} OUTCOME")
    for r in rows:
        opened = r.opened_at.isoformat(timespec="seconds")
        print(
            f"{format_incident_id(r.id):<8} {r.service:<20} {opened:<26} {r.state:<10} "
            f"{human_duration(r.time_to_acknowledge_seconds):<10} "
            f"{human_duration(r.time_to_mitigate_seconds):<10} {r.outcome}"
        )
    return 0


def _parse_since(text: str) -> Any:
    from datetime import UTC, datetime

    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _verify_timeline(settings: CommandSettings, args: argparse.Namespace) -> int:
    from rollback_bot.ids import parse_incident_id
    from rollback_bot.storage.chain_check import verify

    incident = None
    if args.incident is not None:
        incident = parse_incident_id(args.incident)
        if incident is None:
            return _refuse([f"{args.incident!r} is not an incident id (INC-7 or 7)"])
    result = _read(settings, lambda reader: verify(reader, incident_id=incident))
    scope = format_incident_id(incident) if incident is not None else "the timeline"
    if incident is not None and result.entries == 0:
        print(f"rollback-bot: {scope} has no timeline entries", file=sys.stderr)
        return 1
    if result.ok:
        print(f"OK: {scope}: {result.entries} entries on {result.chains} chain(s), none altered")
        return 0
    print(f"BROKEN: {scope}: {len(result.broken)} of {result.chains} chain(s) broken")
    for link in result.broken:
        print(f"  {link.describe()}")
    return 1


def _check_config(settings: Settings, args: argparse.Namespace) -> int:
    from rollback_bot.catalog import CatalogError, load_catalog

    path = args.catalog or settings.catalog_path
    try:
        catalog = load_catalog(path)
    except CatalogError as exc:
        print(f"{path}: {len(exc.problems)} problem(s)")
        for problem in exc.problems:
            print(f"  {problem}")
        return 1
    print(f"{path}: OK, {len(catalog.services)} service(s): {', '.join(catalog.names)}")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    try:
        from sandbox.demo import run_demo
    except ModuleNotFoundError as exc:
        if exc.name not in ("sandbox", "sandbox.demo"):
            raise
        print(
            "rollback-bot: the demo runs on the loopback stand-ins, which are not installed;\n"
            "from a checkout: python3 -m pip install -e ./sandbox",
            file=sys.stderr,
        )
        return 2

    return run_demo(keep=args.keep)


def _redact(url: str) -> str:
    """Never print a database password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


VERBOSE_HELP = "log at INFO, third-party libraries included (default: quiet unless it fails)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rollback-bot", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    p.add_argument("--version", action="version", version=f"rollback-bot {__version__}")
    # -v also after the command (`rollback-bot migrate -v`); SUPPRESS keeps a -v given
    # before the command from being reset by the subcommand's own default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
    )
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the bot (HTTP mode on $PORT)", parents=[common])
    serve.add_argument("--socket-mode", action="store_true", help="also connect over Socket Mode")
    serve.add_argument("--host", default="0.0.0.0")
    serve.set_defaults(func=_serve)
    sub.add_parser(
        "migrate", help="upgrade the database to the newest migration", parents=[common]
    ).set_defaults(func=_migrate)
    export = sub.add_parser("export", help="postmortem of one incident", parents=[common])
    export.add_argument("incident")
    export.add_argument("--format", choices=["md", "json", "html"], default="md")
    export.add_argument("-o", "--output")
    export.add_argument("--pretty", action="store_true", help="indent the JSON (slower)")
    export.add_argument(
        "--ids", action="store_true", help="people by Slack id only (no users.info look-up)"
    )
    export.set_defaults(func=_export, reads=True)
    incidents = sub.add_parser("incidents", help="list incidents", parents=[common])
    incidents.add_argument("--limit", type=int, default=50)
    incidents.add_argument("--service", help="only this catalog service")
    incidents.add_argument("--since", help="opened on or after this date (UTC), e.g. 2026-11-25")
    incidents.add_argument("--format", choices=["table", "json"], default="table")
    incidents.set_defaults(func=_incidents, reads=True)
    verify = sub.add_parser(
        "verify-timeline",
        help="recompute the timeline's hash chains; exit 1 naming the first broken link",
        parents=[common],
    )
    verify.add_argument("incident", nargs="?", help="only this incident (INC-7 or 7)")
    verify.set_defaults(func=_verify_timeline, reads=True)
    check = sub.add_parser("check-config", help="validate the catalog", parents=[common])
    check.add_argument("catalog", nargs="?")
    check.set_defaults(func=_check_config)
    demo = sub.add_parser(
        "demo", help="the full loop on loopback stand-ins, narrated", parents=[common]
    )
    demo.add_argument("--keep", action="store_true", help="leave it running afterwards")
    demo.set_defaults(func=_demo)
    return p


def _settings() -> Settings:
    from rollback_bot.config import load_settings

    return load_settings()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command != "serve":
        return _main(args)
    # Start-up creates ~100,000 objects that live as long as the process (modules, models,
    # the catalog): the cyclic collector's passes over them while they are made cost about
    # 50 ms (the settings' pydantic and SQLAlchemy's core included), and every later full
    # collection would walk them again (tens of ms holding the interpreter lock, in the
    # middle of acks). Collection waits until the server is up; then they are frozen out
    # of it (gc.freeze, just before the listening line).
    gc.disable()
    try:
        return _main(args)
    finally:
        gc.enable()


def _main(args: argparse.Namespace) -> int:
    try:
        # The read commands need a handful of settings, read without pydantic.
        settings = read_command_settings() if getattr(args, "reads", False) else _settings()
    except (InvalidSetting, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        print(f"rollback-bot: invalid settings in the environment:\n{exc}", file=sys.stderr)
        return 2
    setup_logging(
        level=settings.log_level,
        log_format=settings.log_format,
        serving=args.command == "serve",
        verbose=args.verbose,
        secrets=settings.secret_values(),
    )
    try:
        return int(args.func(settings, args))
    except DatabaseNotMigrated as exc:
        # Every command that reads the database says what to run, not a traceback.
        print(f"rollback-bot: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
