"""Where a new job starts: fetching priors first when sources are configured, else queued for preparing.

Every place that makes a job (completion, the admin's force-complete and re-draft) asks here, so
the stage is skipped at once, and entirely, when no ``[[prior_sources]]`` are configured.  The
listener asks here too whether a received instance is a prior that our own C-MOVE sent
(:func:`moved_prior`): such an instance never reopens a study, even one we drafted earlier.
"""

from __future__ import annotations

from radassist.broker import PREPARE_TASK, PRIORS_TASK
from radassist.config import Settings
from radassist.config.priors import DicomPriorSource
from radassist.states import JobState


def fetches_priors(settings: Settings) -> bool:
    """True when jobs search for priors before drafting."""
    return bool(settings.prior_sources)


def first_job_state(settings: Settings) -> JobState:
    """The state a new job is made in."""
    return JobState.PRIORS if fetches_priors(settings) else JobState.QUEUED


def first_task(settings: Settings) -> str:
    """The task a new job is sent to, once its row is committed."""
    return PRIORS_TASK if fetches_priors(settings) else PREPARE_TASK


def moved_prior(settings: Settings, move_originator: str | None) -> bool:
    """True when a C-STORE names as its Move Originator the calling AE title of one of our C-MOVE
    prior sources: a sub-operation of our own move (the archive sending us a prior), which must
    never reopen a study and start a re-draft of the patient's earlier study."""
    originator = (move_originator or "").strip()
    if not originator:
        return False
    return any(
        originator == (source.calling_ae_title or settings.dicom.ae_title)
        for source in settings.prior_sources
        if isinstance(source, DicomPriorSource) and source.retrieve == "move"
    )
