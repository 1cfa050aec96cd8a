"""Rollbacks: the lifecycle state machine, policies, the one writer, and the runner.

The lifecycle decides (pure); the service is the only code that writes a rollback's state,
always with its timeline entry in the same transaction; the runner schedules the work and
hands it to the executors, which alone change Kubernetes.
"""
