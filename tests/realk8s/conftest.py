"""Tests here run against the real control plane (sandbox/realk8s), started once a session.

The ``real_control_plane`` fixture comes from ``tests.support.realk8s``, a plugin of the
root conftest, so this package and the executor suites share one control plane.
"""
