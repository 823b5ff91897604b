"""Event tags (``source:subject:action``) and the one function that writes them.

Event rows are the worklist's timeline.  ``detail`` holds surrogate ids, counts and error codes,
never patient data.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from radassist.db.tables import Event


class EventTag(StrEnum):
    INSTANCE_RECEIVED = "study:instance:received"
    INSTANCE_REJECTED = "study:instance:rejected"
    INSTANCE_REVISED = "study:instance:revised"
    INSTANCE_LOST = "study:instance:lost"
    INSTANCE_RESTORED = "study:instance:restored"
    INSTANCE_IDENTITY_REFUSED = "study:instance:identity_refused"
    IDENTITY_CONFLICT = "study:identity:conflict"
    IDENTITY_RESOLVED = "study:identity:resolved"
    FILES_REMOVED = "study:files:removed"
    STUDY_REOPENED = "study:reopened"
    STUDY_COMPLETE = "study:complete"
    JOB_QUEUED = "job:queued"
    PREPARE_STARTED = "job:prepare:started"
    PREPARE_COMPLETED = "job:prepare:completed"
    DRAFT_STARTED = "job:draft:started"
    DRAFT_COMPLETED = "job:draft:completed"
    SR_BUILT = "job:sr:built"
    OUTPUT_FAILED = "job:output:failed"
    JOB_DONE = "job:done"
    JOB_FAILED = "job:failed"
    JOB_CANCELLED = "job:cancelled"
    JOB_REQUEUED = "job:requeued"
    DELIVERY_SENT = "delivery:sent"
    DELIVERY_RETRY = "delivery:retry"
    DELIVERY_FAILED = "delivery:failed"
    DELIVERY_CANCELLED = "delivery:cancelled"
    DELIVERY_REQUEUED = "delivery:requeued"
    DELIVERY_WAITING = "delivery:waiting"
    NODE_STORAGE_LOW = "node:storage:low"
    NODE_STORAGE_OK = "node:storage:ok"
    ASSOCIATION_REFUSED = "node:association:refused"
    HL7_ORDER_RECEIVED = "hl7:order:received"
    HL7_REPORT_RECEIVED = "hl7:report:received"
    GROUNDING_SR_BUILT = "job:grounding_sr:built"
    PRIORS_SEARCHED = "job:priors:searched"
    DRAFT_HELD = "job:draft:held"
    DRAFT_RELEASED = "job:draft:released"
    DRAFT_DISCARDED = "job:draft:discarded"
    OUTPUT_HELD = "job:output:held"
    DELIVERY_RELEASED = "delivery:released"
    VERDICT_GIVEN = "job:verdict:given"
    QUALITY_MEASURED = "quality:pair:measured"


def record_event(
    session: Session,
    tag: EventTag,
    *,
    study_id: uuid.UUID | None = None,
    job_id: uuid.UUID | None = None,
    **detail: Any,
) -> None:
    """Add an event row to the current transaction (committed with the change it describes)."""
    session.add(Event(tag=str(tag), study_id=study_id, job_id=job_id, detail=detail))
