"""Slack: what the bot says and how it reaches Slack (presenter, outbox, Block Kit, grammar)."""
