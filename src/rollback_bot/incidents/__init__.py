"""Incidents: what opened them, their lifecycle, and the postmortem they export to."""
