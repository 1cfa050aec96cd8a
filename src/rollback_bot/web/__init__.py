"""HTTP surface: the Flask app (alert webhooks, health, metrics) and the bolt app for Slack."""
