"""Clients of the outside systems the bot reads and writes besides Slack and Kubernetes.

One client per system, each with one meaning per operation, so the health gate, the polled
trigger rules and the Silence button cannot disagree about what an answer means.
"""
