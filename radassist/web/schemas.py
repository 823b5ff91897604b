"""Response schemas of the JSON API: only what the worklist shows, never patient data.

Timestamps are timezone-aware UTC and serialise as ISO-8601 with a ``Z`` suffix.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict

from radassist.db.queries import StudyDetail, StudyExtras, WorklistState
from radassist.states import DeliveryChannel, DeliveryState, JobState


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class DeliveryOut(_Out):
    id: uuid.UUID | None = None
    channel: DeliveryChannel
    destination: str
    state: DeliveryState
    attempts: int
    last_error_code: str | None
    last_error_message: str | None
    next_attempt_at: dt.datetime | None
    first_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


class StudyOut(_Out):
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
    waiting_s: float | None
    queued_s: float | None
    drafting_s: float | None
    delivering_s: float | None
    total_s: float | None
    error_code: str | None
    error_message: str | None
    has_draft: bool
    deliveries: list[DeliveryOut]
    patient_age: str | None = None
    patient_sex: str | None = None
    priority: str | None = None


class StudyPage(BaseModel):
    items: list[StudyOut]
    total: int
    total_capped: bool = False
    """True when a state-filtered total reached 10,000 and was not counted further ("10,000+")."""
    limit: int
    offset: int


class EventOut(_Out):
    tag: str
    at: dt.datetime
    detail: dict[str, Any]
    job_id: uuid.UUID | None
    count: int
    last_at: dt.datetime | None


class JobOut(_Out):
    id: uuid.UUID
    state: JobState
    model_name: str
    attempts: int
    error_code: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None


class DraftOut(_Out):
    """The model's unverified text: a draft for a radiologist, never a signed report."""

    job_id: uuid.UUID
    findings: str
    impression: str
    model_name: str
    model_revision: str | None
    prompt_version: str
    created_at: dt.datetime
    verified: bool = False


class SeriesOut(_Out):
    series_instance_uid: str
    modality: str | None
    series_number: int | None
    series_description: str | None
    instance_count: int


class AssociationOut(_Out):
    started_at: dt.datetime
    ended_at: dt.datetime | None
    calling_ae_title: str
    called_ae_title: str
    peer_host: str
    outcome: str
    reason: str | None
    instances_stored: int
    instances_failed: int


class StudyDetailOut(StudyOut):
    jobs: list[JobOut]
    events: list[EventOut]
    draft: DraftOut | None
    series: list[SeriesOut] = []
    prompt: str | None = None
    consistency_warnings: list[str] = []
    series_chosen: dict[str, Any] | None = None
    """For a volume: the series the model saw and how many of its slices."""
    source_sop_instance_uids: list[str] = []
    """The instances whose images the model was shown."""
    associations: list[AssociationOut] = []

    @classmethod
    def from_detail(cls, detail: StudyDetail, extras: StudyExtras | None = None) -> StudyDetailOut:
        study = StudyOut.model_validate(detail.row)
        more: dict[str, Any] = {}
        if extras is not None:
            more = {
                "series": [SeriesOut.model_validate(x) for x in extras.series],
                "prompt": extras.prompt,
                "consistency_warnings": list(extras.consistency_warnings),
                "series_chosen": extras.series_chosen,
                "source_sop_instance_uids": list(extras.source_sop_instance_uids),
                "associations": [AssociationOut.model_validate(a) for a in extras.associations],
            }
        return cls.model_validate(
            {
                **dict(study),
                "jobs": [JobOut.model_validate(j) for j in detail.jobs],
                "events": [EventOut.model_validate(e) for e in detail.events],
                "draft": DraftOut.model_validate(detail.draft) if detail.draft is not None else None,
                **more,
            }
        )


class ActionOut(BaseModel):
    ok: bool
    message: str


class AuditOut(_Out):
    at: dt.datetime
    user_name: str
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any]


class PauseOut(_Out):
    ae_title: str
    paused_at: dt.datetime
    paused_by: str


class WorkerOut(_Out):
    name: str
    queues: list[str]
    pool: str | None
    concurrency: int | None
    active: int | None


class SystemOut(BaseModel):
    queue_depths: dict[str, int | None]
    queue_error: str | None
    workers: list[WorkerOut] | None
    workers_error: str | None
    model_name: str
    disk_total: int | None
    disk_free: int | None
    counts_last_hour: dict[str, int]
    counts_last_day: dict[str, int]
