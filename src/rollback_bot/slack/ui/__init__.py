"""Slack presentation: view models in, Block Kit out, with no I/O.

The service layer fills the view models (``views``), the builders (``blocks``)
turn them into message and modal payloads, and the listeners send them. Every
``action_id`` and ``callback_id`` is named once, in ``action_ids``.
"""
