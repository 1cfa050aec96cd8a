"""Alerts: parsing the webhooks, matching them to services, grouping, triggers and automation.

An alert enters through a parser (Alertmanager, Grafana, generic JSON), is matched to a
catalog service, grouped and relayed to Slack once per group; trigger rules may suggest a
rollback or start one behind a countdown.
"""
