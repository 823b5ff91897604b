"""Where a new job starts: fetching priors first when sources are configured, else queued for drafting.

Every place that makes a job (completion, the admin's force-complete and re-draft) asks here, so
the stage is skipped at once, and entirely, when no ``[[prior_sources]]`` are configured.
"""

from __future__ import annotations

from radassist.broker import DRAFT_TASK, PRIORS_TASK
from radassist.config import Settings
from radassist.states import JobState


def fetches_priors(settings: Settings) -> bool:
    """True when jobs search for priors before drafting."""
    return bool(settings.prior_sources)


def first_job_state(settings: Settings) -> JobState:
    """The state a new job is made in."""
    return JobState.PRIORS if fetches_priors(settings) else JobState.QUEUED


def first_task(settings: Settings) -> str:
    """The task a new job is sent to, once its row is committed."""
    return PRIORS_TASK if fetches_priors(settings) else DRAFT_TASK
