"""Executors: the only code that changes Kubernetes, and the gate that checks the result.

The lifecycle decides; an executor acts. Each strategy (instant, blue-green,
gradual, flag) implements ``rollback_bot.executors.base.Executor`` and is chosen by
``rollback_bot.executors.registry.executor_for``. Verifying what was done is part of
acting, so the health gate (``rollback_bot.executors.health``) lives here too.
"""
