"""The `/rollback` grammar: text in, one typed command out, nothing else.

Parsing is kept apart from acting so that every way a person can mistype a
command during an incident is tested without Slack, a database or a cluster.
A mistake never escapes as a stack trace: ``parse`` raises only
``CommandError``, whose text says what was wrong and shows the right form, and
which the listener sends back as an ephemeral message.

The package keeps the seams apart: ``model`` (the typed commands), ``verbs`` (forms,
examples, help), ``errors``, ``tokens`` (text to tokens and options) and
``grammar`` (each verb's rules and ``parse``).
"""

from rollback_bot.ids import (
    format_incident_id,
    format_rollback_id,
    parse_incident_id,
    parse_rollback_id,
)
from rollback_bot.slack.commands.errors import CommandError, ambiguous_revision, unknown_revision
from rollback_bot.slack.commands.grammar import parse
from rollback_bot.slack.commands.model import (
    EXPORT_FORMATS,
    STRATEGIES,
    Abort,
    Approve,
    Command,
    DeclareMitigated,
    Deny,
    Export,
    ExportFormat,
    Help,
    History,
    KillFlag,
    MarkRelease,
    Note,
    Pause,
    RequestRollback,
    Resume,
    ResumeGitOps,
    Status,
    Strategy,
)
from rollback_bot.slack.commands.verbs import HELP_TEXT, VERB_NAMES, VERBS, Verb, usage_of

__all__ = [
    "EXPORT_FORMATS",
    "HELP_TEXT",
    "STRATEGIES",
    "VERBS",
    "VERB_NAMES",
    "Abort",
    "Approve",
    "Command",
    "CommandError",
    "DeclareMitigated",
    "Deny",
    "Export",
    "ExportFormat",
    "Help",
    "History",
    "KillFlag",
    "MarkRelease",
    "Note",
    "Pause",
    "RequestRollback",
    "Resume",
    "ResumeGitOps",
    "Status",
    "Strategy",
    "Verb",
    "ambiguous_revision",
    "format_incident_id",
    "format_rollback_id",
    "parse",
    "parse_incident_id",
    "parse_rollback_id",
    "unknown_revision",
    "usage_of",
]
