"""Incidents: what opened them, the manual changes noticed while they are open, the
read-only questions people ask about them and their rollbacks, and the postmortem.
"""
