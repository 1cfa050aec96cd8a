"""Executors: the only code that changes Kubernetes.

The lifecycle decides; an executor acts. Each strategy (instant, blue-green,
gradual, flag) implements ``rollback_bot.executors.base.Executor`` and is chosen by
``rollback_bot.executors.registry.executor_for``.
"""
