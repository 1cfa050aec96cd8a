"""Bolt listeners: each parses a Slack request, calls one service, and renders the answer."""
