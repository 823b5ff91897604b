"""The rows the screens and the JSON API show, declared once.

Every read model returns these frozen dataclasses, never ORM objects, so a template or a response
cannot trigger a lazy load (or hold a session open); the API serves them as they are (FastAPI
takes dataclasses as response models).  None carries a patient name, ID, birth date or accession
number.  Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from radassist.read.grounding import GroundingView
from radassist.read.priors import ComparisonRow
from radassist.read.review import ReviewView
from radassist.states import (
    FINAL_JOB_STATES,
    DeliveryChannel,
    DeliveryState,
    JobPriority,
    JobState,
    StudyState,
)

WorklistState: TypeAlias = StudyState | JobState
"""What the worklist shows for a study: a study state while no job is in progress for it (or
``complete`` before its job exists), else the state of its latest job."""

IN_PROGRESS_JOB_STATES: tuple[JobState, ...] = tuple(s for s in JobState if s not in FINAL_JOB_STATES)
WAITING_STUDY_STATES = (StudyState.RECEIVING, StudyState.IDENTITY_CONFLICT)
"""Study states the worklist shows instead of a finished job's (a reopened or held study)."""
WORKLIST_STATES: tuple[WorklistState, ...] = (*WAITING_STUDY_STATES, StudyState.COMPLETE, *JobState)


def worklist_state(value: str) -> WorklistState:
    """The worklist state named ``value`` (``ValueError`` when there is none)."""
    for state in WORKLIST_STATES:
        if state.value == value:
            return state
    raise ValueError(f"no worklist state {value!r}")


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One output to one destination, with its attempts and last error."""

    job_id: uuid.UUID
    channel: DeliveryChannel
    destination: str
    state: DeliveryState
    attempts: int
    last_error_code: str | None
    last_error_message: str | None
    next_attempt_at: dt.datetime | None
    first_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class StudyRow:
    """One line of the worklist: the study, its latest job, the time spent in each stage."""

    id: uuid.UUID
    study_instance_uid: str
    modality: str | None
    study_description: str | None
    calling_ae_title: str | None
    instance_count: int
    state: WorklistState
    first_received_at: dt.datetime
    last_received_at: dt.datetime
    completed_at: dt.datetime | None
    job_id: uuid.UUID | None
    job_state: JobState | None
    job_attempts: int | None
    model_name: str | None
    job_created_at: dt.datetime | None
    job_started_at: dt.datetime | None
    job_drafted_at: dt.datetime | None
    job_finished_at: dt.datetime | None
    receiving_s: float | None
    """First instance to last instance."""
    waiting_s: float | None
    """Last instance to the study being declared complete (the quiet period, as it happened)."""
    queued_s: float | None
    drafting_s: float | None
    delivering_s: float | None
    """Draft committed to the job's end: building the outputs and delivering them."""
    total_s: float | None
    """First instance to the job's end."""
    error_code: str | None
    error_message: str | None
    has_draft: bool
    deliveries: tuple[DeliveryRow, ...]
    patient_age: str | None = None
    patient_sex: str | None = None
    priority: str | None = None
    """The RIS order's priority (``S``, ``A``, ``R``...), when an order for the accession is known."""
    job_priority: JobPriority | None = None
    """The latest job's priority: ``stat`` (from the order or the pipeline) goes first in every queue."""
    warnings: tuple[str, ...] = ()
    """The safety checks that fired on the latest job's draft (``anatomy``, ``laterality``...)."""


@dataclass(frozen=True, slots=True)
class EventRow:
    tag: str
    at: dt.datetime
    detail: dict[str, Any]
    job_id: uuid.UUID | None
    count: int = 1
    """Runs of ``study:instance:received`` are folded into one row (a CT sends hundreds)."""
    last_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class DraftRow:
    """The model's unverified text: a draft for a radiologist, never a signed report."""

    job_id: uuid.UUID
    findings: str
    impression: str
    model_name: str
    model_revision: str | None
    prompt_version: str
    created_at: dt.datetime
    verified: bool = False


@dataclass(frozen=True, slots=True)
class JobRow:
    id: uuid.UUID
    state: JobState
    model_name: str
    attempts: int
    error_code: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    shadow: bool = False
    """A shadow model's job (``[[quality.shadows]]``): drafted and measured, never delivered."""


@dataclass(frozen=True, slots=True)
class SeriesRow:
    series_instance_uid: str
    modality: str | None
    series_number: int | None
    series_description: str | None
    instance_count: int


@dataclass(frozen=True, slots=True)
class AssociationRow:
    started_at: dt.datetime
    ended_at: dt.datetime | None
    calling_ae_title: str
    called_ae_title: str
    peer_host: str
    outcome: str
    reason: str | None
    instances_stored: int
    instances_failed: int


@dataclass(frozen=True, slots=True)
class StudyView(StudyRow):
    """The study page: its worklist row, every job, the timeline, the draft and what the model saw."""

    jobs: tuple[JobRow, ...] = ()
    """Every job of the study, newest first (a reopened study has several)."""
    events: tuple[EventRow, ...] = ()
    draft: DraftRow | None = None
    """The latest job's draft, when it has one."""
    series: tuple[SeriesRow, ...] = ()
    prompt: str | None = None
    consistency_warnings: tuple[str, ...] = ()
    series_chosen: dict[str, Any] | None = None
    """For a volume: the series the model saw and how many of its slices."""
    source_sop_instance_uids: tuple[str, ...] = ()
    """The instances whose images the model was shown."""
    associations: tuple[AssociationRow, ...] = ()
    """The associations that brought the study (from its calling AE, open while it was received)."""
    patient_groups: tuple[PatientGroupRow, ...] = ()
    """For a study held for an identity conflict: its instances grouped by the patient they name."""
    grounding: GroundingView | None = None
    """The latest draft's findings with boxes, on the images the model saw (a grounded draft only)."""
    comparison: ComparisonRow | None = None
    """The latest job's priors, or why it has none (:mod:`radassist.read.priors`); None when never searched."""
    review: ReviewView | None = None
    """The latest draft's safety warnings (with explanations), whether it is held, and its verdicts."""


@dataclass(frozen=True, slots=True)
class PatientGroupRow:
    """The instances of a study that name one patient (compared as keyed hashes, never by values)."""

    label: str
    """``A``, ``B``, ...: in the order the groups first arrived."""
    instances: int
    first_received_at: dt.datetime
    instance_id: uuid.UUID
    """The group's first instance: what a resolution keeps to say which patient is right."""
    series_descriptions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PauseRow:
    ae_title: str
    paused_at: dt.datetime
    paused_by: str


@dataclass(frozen=True, slots=True)
class AuditRow:
    at: dt.datetime
    user_name: str
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WorkerRow:
    name: str
    queues: tuple[str, ...]
    pool: str | None
    concurrency: int | None
    active: int | None


@dataclass(frozen=True, slots=True)
class WorkerSeenRow:
    """A worker as it last reported in (``worker_presence``), on every broker."""

    name: str
    queues: tuple[str, ...]
    started_at: dt.datetime
    seen_at: dt.datetime
    stopped_at: dt.datetime | None
    state: str
    """``answering``; ``silent`` (nothing for ``[queue] worker_lost_after_seconds``: its jobs are
    handed back); ``stopped`` (it stopped cleanly)."""
    holding: int
    """Jobs it is preparing or drafting now."""


@dataclass(frozen=True, slots=True)
class ProbeStatus:
    """What the parts outside the database said when last asked; ``None`` where they did not answer."""

    queue_depths: dict[str, int | None]
    queue_error: str | None
    workers: tuple[WorkerRow, ...] | None
    """None when the broker cannot ask workers (Celery's SQLAlchemy transport has no broadcast)."""
    workers_error: str | None
    model_name: str
    disk_total: int | None
    disk_free: int | None


@dataclass(frozen=True)
class Freed:
    """What removing studies' files freed."""

    studies: int = 0
    files: int = 0
    bytes: int = 0

    def __add__(self, other: Freed) -> Freed:
        return Freed(self.studies + other.studies, self.files + other.files, self.bytes + other.bytes)


@dataclass(frozen=True)
class RetentionSummary:
    last_day: Freed
    total: Freed
    last_removal_at: dt.datetime | None
    """When retention last removed a study's files (None: never)."""


@dataclass(frozen=True, slots=True)
class SystemView(ProbeStatus):
    """The system page: the probe's answers and the studies per state of the last hour and day."""

    counts_last_hour: dict[str, int] = field(default_factory=dict)
    counts_last_day: dict[str, int] = field(default_factory=dict)
    retention: RetentionSummary | None = None
    """What retention freed (studies, files, bytes) in the last day and in all."""
    workers_seen: list[WorkerSeenRow] = field(default_factory=list)
    """The workers that reported in during the last day, or have not stopped, by name."""
