"""Every Block Kit ``action_id``, ``block_id`` and view ``callback_id`` the bot uses.

The builders put these on buttons and inputs and the listeners register on the
same names, so a rename cannot leave a button without its handler. Nothing
else defines one.
"""

from __future__ import annotations

# Alert message
ROLL_BACK = "rollback.request"  # opens the confirmation modal
SILENCE_1H = "alert.silence_1h"

# Rollback message
APPROVE = "rollback.approve"
DENY = "rollback.deny"  # opens the deny modal
PAUSE = "rollback.pause"
RESUME = "rollback.resume"
SKIP_TO_END = "rollback.skip_to_end"  # gradual, paused: "Go to 0% now"
ABORT = "rollback.abort"
CANCEL_COUNTDOWN = "rollback.cancel_countdown"  # the ABORT move, while a countdown runs
RUN_NOW = "rollback.run_now"  # "Roll back now" on a countdown
UNDO_FLAG = "rollback.undo_flag"
RESUME_GITOPS = "rollback.resume_gitops"  # "Resume GitOps once the fix is merged"
EXPORT = "incident.export"

# Modals: callback ids of the views and the ids of their reason inputs
REQUEST_MODAL = "rollback.request_modal"
DENY_MODAL = "rollback.deny_modal"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"
# The override a rollback to a known-bad revision needs (a checkbox in the request modal)
FORCE_BAD_BLOCK = "force_bad"
FORCE_BAD_INPUT = "force_bad_input"

# Prefixes of the action blocks' ids; the builders add the group or rollback id and the
# block's index (a message holds its buttons in blocks of at most 25).
ALERT_BLOCK = "alert"
ROLLBACK_BLOCK = "rollback"
SUGGESTION_BLOCK = "suggestion"

ALL_ACTIONS: frozenset[str] = frozenset(
    {
        ROLL_BACK,
        SILENCE_1H,
        APPROVE,
        DENY,
        PAUSE,
        RESUME,
        SKIP_TO_END,
        ABORT,
        CANCEL_COUNTDOWN,
        RUN_NOW,
        UNDO_FLAG,
        RESUME_GITOPS,
        EXPORT,
    }
)
VIEW_CALLBACKS: frozenset[str] = frozenset({REQUEST_MODAL, DENY_MODAL})

# Message shortcuts (callback ids; slack-app-manifest.yaml declares them)
ADD_TO_TIMELINE = "add_to_timeline"  # "Add to incident timeline"
SHORTCUTS: frozenset[str] = frozenset({ADD_TO_TIMELINE})
