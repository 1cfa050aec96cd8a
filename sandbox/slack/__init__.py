"""Loopback Slack for tests, demos and benchmarks.

`SlackStandIn` answers the Web API and Socket Mode like Slack, `SlackDriver`
sends Slack's requests to the bot, and `sign_request` signs them.
"""

from sandbox.slack.driver import SlackDriver
from sandbox.slack.signing import sign_request
from sandbox.slack.standin import SlackStandIn

__all__ = ["SlackDriver", "SlackStandIn", "sign_request"]
