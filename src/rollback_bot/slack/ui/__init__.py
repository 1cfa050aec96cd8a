"""Slack presentation: view models in, Block Kit out, with no I/O.

The service layer fills the view models (``views``); one module per surface
turns them into ``slack_sdk`` Block Kit models and, at the edge, into the dicts
the listeners and the outbox send:

- ``alert_card``: the alert group's message and a rule's suggestion in its thread
- ``rollback_message``: the rollback's own message (with ``rollback_controls``,
  its buttons); ``thread``: its step and summary replies
- ``request_modal``, ``deny_modal``, ``notices``: the modals
- ``history``, ``status``, ``command_help``: the replies to ``/rollback``

Shared: ``kit`` (the Block Kit shapes and the edge), ``mrkdwn`` (how text is
written), ``rollback_wording``, ``limits`` (the Slack limits ``slack_sdk`` does
not encode, and ``clip``), ``values`` (what buttons and modals carry back).
Every ``action_id``, ``block_id`` and ``callback_id`` is named once, in ``action_ids``.
"""
