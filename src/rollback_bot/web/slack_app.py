"""The slack-bolt ``App``: signature checks, retry de-duplication, listeners.

Bolt verifies every request's signature and timestamp (older than 5 minutes
is refused). Slack retries a request it believes timed out, with the same
``trigger_id``; claiming that id once in the database makes the retry's work a
no-op whichever process or thread receives it. The claim is made by the lazy
work, after the acknowledgement: acknowledgements only parse and answer (a
second one says the same as the first), so an ack never waits for a database
write, and a command answered in its ack (help, a parse error) writes nothing.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from slack_bolt import App
from slack_bolt.kwargs_injection import build_required_kwargs
from slack_bolt.lazy_listener.thread_runner import ThreadLazyListenerRunner
from slack_bolt.request import BoltRequest
from slack_bolt.util.utils import get_arg_names_of_callable
from slack_sdk import WebClient

from rollback_bot.logs import quiet_bolt_rejections
from rollback_bot.services import Services
from rollback_bot.slack.identity import BotIdentity
from rollback_bot.storage.repositories.idempotency import claim_alone
from rollback_bot.web.acks_first import Acked, AcksInFlight
from rollback_bot.web.listeners import actions, commands, shortcuts, views

log = logging.getLogger(__name__)


# Interactions Slack may deliver twice (each carries a trigger_id).
_INTERACTIONS = ("block_actions", "view_submission", "message_action")


def _claim_key(body: dict[str, Any]) -> str | None:
    key = body.get("trigger_id")
    if key and (body.get("type") in _INTERACTIONS or "command" in body):
        return f"slack:{key}"
    return None


def _may_wait(body: dict[str, Any]) -> bool:
    """Work that may wait for the other acknowledgements: a button's, unless it opens a
    form (``views.open`` takes the click's trigger_id only within 3 s of the click)."""
    if body.get("type") != "block_actions":
        return False
    clicked = body.get("actions") or [{}]
    return clicked[0].get("action_id") not in actions.OPENS_A_FORM


# Arguments of lazy functions, as ``build_required_kwargs`` takes them from the request: it
# builds all thirty (a Say, a Respond, a Complete, ...) to hand over the one or two asked for.
_CHEAP_ARGS: dict[str, Callable[[BoltRequest], Any]] = {
    "body": lambda request: request.body,
    "context": lambda request: request.context,
    "respond": lambda request: request.context.respond,
    "client": lambda request: request.context.client,
}


class ClaimingLazyRunner(ThreadLazyListenerRunner):
    """Runs a listener's lazy work once per Slack delivery: the first to claim it does it.

    Each listener has one lazy function, so the delivery's ``trigger_id`` is its key.
    """

    def __init__(self, app: App, services: Services) -> None:
        # Its own pool (SLACK_WORK_THREADS), smaller than the HTTP server's request threads:
        # in a burst the work behind the acks gets fewer turns at the interpreter lock, so
        # acks come sooner and the work waits its turn (answers to clicks come later).
        threads = services.settings.slack_work_threads
        executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="slack-work")
        super().__init__(logger=app.logger, executor=executor)
        self._services = services
        # SQLite has one writer at a time and makes the others sleep-and-retry with growing
        # pauses; queueing this process's claims on a lock wakes each one at once.
        sqlite = services.engine.dialect.name == "sqlite"
        self._serial: AbstractContextManager[Any] = threading.Lock() if sqlite else nullcontext()
        self._arg_names: dict[Callable[..., None], list[str]] = {}
        #: The Slack requests being served (counted by ``create_web_app``'s HTTP app).
        self.acks = AcksInFlight()

    def start(self, function: Callable[..., None], request: BoltRequest) -> None:
        work = self._wired(function, request)
        key = _claim_key(request.body)
        if key is not None:
            work = functools.partial(self._once, key, work)
        if _may_wait(request.body):
            work = functools.partial(self._after_acks, self.acks.acked(), work)
        else:  # work that must not wait (a form to open): none queued before it waits either
            self.acks.hurry()
        self.executor.submit(work)

    def _after_acks(self, acked: Acked, work: Callable[[], None]) -> None:
        self.acks.wait_quiet(acked)
        work()

    def _wired(self, function: Callable[..., None], request: BoltRequest) -> Callable[[], None]:
        """``build_runnable_function``, with the function's argument names read once."""
        names = self._arg_names.get(function)
        if names is None:
            names = self._arg_names[function] = get_arg_names_of_callable(function)
        logger = self.logger
        cheap = all(name in _CHEAP_ARGS for name in names)

        def wired() -> None:
            try:
                if cheap:  # what bolt would pass, without building every other argument
                    kwargs = {name: _CHEAP_ARGS[name](request) for name in names}
                else:
                    kwargs = build_required_kwargs(
                        logger=logger,
                        required_arg_names=names,
                        request=request,
                        response=None,
                        this_func=function,
                    )
                function(**kwargs)
            except Exception as e:
                logger.error(f"Failed to run an internal function ({e})")

        return wired

    def _once(self, key: str, work: Callable[[], None]) -> None:
        if self._claim(key):
            work()
        else:
            log.info("duplicate Slack delivery of %s ignored", key.removeprefix("slack:"))

    def _claim(self, key: str) -> bool:
        try:
            with self._serial:
                fresh = claim_alone(self._services.engine, key=key)
        except Exception:
            # The delivery was acknowledged: doing the work (which answers the person, also
            # when the database fails it) beats dropping it for want of the claim.
            log.warning("could not claim Slack delivery %s; doing it", key, exc_info=True)
            return True
        return fresh


def create_bolt_app(services: Services) -> App:
    settings = services.settings
    quiet_bolt_rejections()
    app = App(
        # Named as bolt would name it (its caller's file), which it finds through
        # ``inspect.stack()``: reading the source of every frame, 50-150 ms of start-up.
        # The name is bolt's logger name, so it stays.
        name="slack_app.py",
        # Tokenless: bolt gives each request a client with the token ``authorize`` returns.
        client=WebClient(base_url=services.slack.base_url, timeout=services.slack.timeout),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # Not bolt's own single-workspace check: it refuses every request while auth.test
        # fails, so one failed call at the first request would leave the buttons dead.
        authorize=BotIdentity(services.slack),
        # Acknowledgements run in the request thread and return at once; the work runs
        # after, as lazy listeners (no polling for the ack, nothing blocks the response).
        process_before_response=True,
        request_verification_enabled=True,
        url_verification_enabled=True,
        ignoring_self_events_enabled=False,
    )
    app.listener_runner.lazy_listener_runner = ClaimingLazyRunner(app, services)
    # Bolt tries its listeners in this order, each try building the arguments of a matcher;
    # they answer disjoint kinds of request, so the one listener for every button goes first
    # (a click tried the two command listeners before it).
    actions.register(app, services)
    commands.register(app, services)
    views.register(app, services)
    shortcuts.register(app, services)
    return app
