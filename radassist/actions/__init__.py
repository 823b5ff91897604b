"""The admin's actions (the write side of the web app): each a compare-and-set plus an audit row.

The routes in :mod:`radassist.web.routes.actions` call these inside one transaction and send the
returned :class:`Dispatch` tasks after the commit.
"""

from radassist.actions.intake import intake_paused, pause_intake, paused_ae_titles, resume_intake
from radassist.actions.jobs import cancel_job, retry_delivery, retry_job
from radassist.actions.outcome import IN_PROGRESS, ActionResult, Dispatch, audit
from radassist.actions.studies import force_complete, redraft, resolve_identity

__all__ = [
    "IN_PROGRESS", "ActionResult", "Dispatch", "audit", "cancel_job", "force_complete", "intake_paused",
    "pause_intake", "paused_ae_titles", "redraft", "resolve_identity", "resume_intake", "retry_delivery", "retry_job",
]
