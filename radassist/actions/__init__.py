"""The admin's and the radiologist's actions (the write side of the web app): each a compare-and-set
plus an audit row.

The routes in :mod:`radassist.web.routes.actions` call these inside one transaction and send the
returned :class:`Dispatch` tasks after the commit.
"""

from radassist.actions.held import cancel_held, send_held
from radassist.actions.intake import intake_paused, pause_intake, paused_ae_titles, resume_intake
from radassist.actions.jobs import cancel_job, retry_delivery, retry_job
from radassist.actions.outcome import IN_PROGRESS, ActionResult, Dispatch, audit, refused
from radassist.actions.review import discard_draft, release_draft
from radassist.actions.studies import force_complete, redraft, resolve_identity
from radassist.actions.verdicts import VerdictInput, give_verdict

__all__ = [
    "IN_PROGRESS", "ActionResult", "Dispatch", "VerdictInput", "audit", "cancel_held", "cancel_job", "discard_draft",
    "force_complete", "give_verdict", "intake_paused", "pause_intake", "paused_ae_titles", "redraft", "refused",
    "release_draft", "resolve_identity", "resume_intake", "retry_delivery", "retry_job", "send_held",
]
