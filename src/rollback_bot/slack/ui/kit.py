"""The few Block Kit shapes every surface is made of, as ``slack_sdk`` models, and the edge.

Each constructor cuts its text to the limit of the model it builds (read from
the ``slack_sdk`` class, or from ``limits`` where ``slack_sdk`` has none), so a
surface never has to think about sizes. ``message`` and ``modal_payload`` are
the edge: they turn the models into the dicts the outbox and the Web API
calls send, and there ``slack_sdk`` validates them. A payload it refuses is a
bug in a builder, raised as ``InvalidPayload`` rather than sent to Slack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from rollback_bot.slack.ui import action_ids
from rollback_bot.slack.ui.limits import (
    MAX_FIELD,
    MAX_MESSAGE_BLOCKS,
    MAX_MESSAGE_TEXT,
    MAX_MODAL_BLOCKS,
    MAX_REASON,
    MAX_TEXT,
    clip,
)
from rollback_bot.slack.ui.mrkdwn import clean, clip_escaped

# What the outbox and ``respond`` send: the fallback text and the blocks, as dicts.
Message = tuple[str, list[dict[str, Any]]]


class InvalidPayload(ValueError):
    """A payload Slack would refuse: a builder bug, caught before it is sent."""


# --- text objects ------------------------------------------------------------------


def plain(text: str, limit: int) -> PlainTextObject:
    """Plain text is never markup; only control and bidi characters are taken care of."""
    return PlainTextObject(text=clip(clean(text), limit), emoji=True)


def mrkdwn(text: str, limit: int = MAX_TEXT) -> MarkdownTextObject:
    """Already-escaped mrkdwn (outside text went through ``mrkdwn.escape``), cut to fit."""
    return MarkdownTextObject(text=clip_escaped(clean(text), limit))


# --- blocks -------------------------------------------------------------------------


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=plain(text, HeaderBlock.text_max_length))


def section(text: str, *, accessory: ButtonElement | None = None) -> SectionBlock:
    return SectionBlock(text=mrkdwn(text, SectionBlock.text_max_length), accessory=accessory)


def fields(pairs: Sequence[tuple[str, str]]) -> SectionBlock:
    """Label and value pairs, two columns; at most as many as a section holds."""
    return SectionBlock(
        fields=[
            mrkdwn(f"*{label}*\n{value}", MAX_FIELD)
            for label, value in pairs[: SectionBlock.fields_max_length]
        ]
    )


def context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[mrkdwn(t) for t in texts[: ContextBlock.elements_max_length]])


def confirm(title: str, text: str, yes: str) -> ConfirmObject:
    """The dialog in front of a button that changes something at once; ``yes`` does it."""
    return ConfirmObject(
        title=plain(title, ConfirmObject.title_max_length),
        text=mrkdwn(text, ConfirmObject.text_max_length),
        confirm=plain(yes, ConfirmObject.confirm_max_length),
        deny=plain("Go back", ConfirmObject.deny_max_length),
        style="danger",
    )


def button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: Literal["primary", "danger"] | None = None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    return ButtonElement(
        text=plain(text, ButtonElement.text_max_length),
        action_id=action_id,
        value=value,
        style=style,
        confirm=confirm,
    )


def actions(block_id: str, buttons: Sequence[ButtonElement]) -> list[ActionsBlock]:
    """Buttons in action blocks as full as Slack allows (none when there are no buttons)."""
    size = ActionsBlock.elements_max_length
    return [
        ActionsBlock(block_id=f"{block_id}.{i // size}", elements=list(buttons[i : i + size]))
        for i in range(0, len(buttons), size)
    ]


def reason_input(*, optional: bool, initial: str | None, hint: str) -> InputBlock:
    """The multi-line "Reason" input of the request and deny modals."""
    return InputBlock(
        block_id=action_ids.REASON_BLOCK,
        optional=optional,
        label=plain("Reason", InputBlock.label_max_length),
        element=PlainTextInputElement(
            action_id=action_ids.REASON_INPUT,
            multiline=True,
            max_length=MAX_REASON,
            placeholder=plain(hint, PlainTextInputElement.placeholder_max_length),
            initial_value=clip(clean(initial), MAX_REASON) if initial else None,
        ),
    )


def force_bad_input(revision: int | None) -> InputBlock:
    """The explicit override a rollback to a known-bad revision needs."""
    return InputBlock(
        block_id=action_ids.FORCE_BAD_BLOCK,
        optional=True,
        label=plain("Override", InputBlock.label_max_length),
        element=CheckboxesElement(
            action_id=action_ids.FORCE_BAD_INPUT,
            options=[
                Option(
                    value="force_bad",
                    text=MarkdownTextObject(
                        text=f"Revision {revision} is known bad: roll back to it anyway"
                    ),
                )
            ],
        ),
    )


def fit(blocks: Sequence[Block], limit: int = MAX_MESSAGE_BLOCKS) -> list[Block]:
    """At most ``limit`` blocks; action blocks are kept because they are the point."""
    if len(blocks) <= limit:
        return list(blocks)
    kept = [b for b in blocks if isinstance(b, ActionsBlock)]
    others = [b for b in blocks if not isinstance(b, ActionsBlock)]
    room = limit - len(kept) - 1
    dropped = len(others) - room
    return [*others[:room], context(f"…and {dropped} more"), *kept]


# --- the edge ---------------------------------------------------------------------------


def _to_dict(model: Block | View) -> dict[str, Any]:
    try:
        return model.to_dict()
    except SlackObjectFormationError as exc:
        raise InvalidPayload(f"{type(model).__name__}: {exc}") from exc


def block_dicts(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    """Blocks (fitted to a message) as the dicts an ephemeral reply sends."""
    return [_to_dict(b) for b in fit(blocks)]


def message(text: str, blocks: Sequence[Block]) -> Message:
    """A message's fallback text and blocks, fitted and validated, as dicts."""
    return clip_escaped(clean(text), MAX_MESSAGE_TEXT), block_dicts(blocks)


def modal_payload(
    *,
    title: str,
    blocks: Sequence[Block],
    close: str,
    callback_id: str | None = None,
    submit: str | None = None,
    private_metadata: str | None = None,
) -> dict[str, Any]:
    """A modal view as the dict ``views.open`` and ``views.update`` send.

    ``private_metadata`` is not cut: the submit listener must read back all of
    it, so a value over Slack's limit is refused (``InvalidPayload``).
    """
    return _to_dict(
        View(
            type="modal",
            callback_id=callback_id,
            title=plain(title, View.title_max_length),
            submit=plain(submit, View.submit_max_length) if submit else None,
            close=plain(close, View.close_max_length),
            private_metadata=private_metadata,
            blocks=fit(blocks, MAX_MODAL_BLOCKS),
        )
    )
