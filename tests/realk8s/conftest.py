"""Tests here run against the real control plane (sandbox/realk8s), started once a session."""

from tests.support.realk8s import real_control_plane  # noqa: F401
