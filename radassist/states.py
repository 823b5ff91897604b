"""The pipeline's states and the transitions allowed between them.

A study collects instances (``receiving``) until it has been quiet long enough, then it is
``complete`` and a job is queued for it: a cpu worker prepares its inputs (``preparing`` ->
``prepared``), then a gpu worker drafts it.  The job owns what follows; each of its outputs (the SR to
each PACS, the ORU to the RIS) is a delivery with a state of its own, so a RIS outage never holds
back the PACS copy.
"""

from __future__ import annotations

from enum import StrEnum


class StudyState(StrEnum):
    RECEIVING = "receiving"
    COMPLETE = "complete"
    IDENTITY_CONFLICT = "identity_conflict"
    """Its instances disagree on who the patient is: nothing is drafted or sent until an admin resolves it."""
    PRIOR = "prior"
    """Fetched from an archive as an earlier study of a patient being drafted (:mod:`radassist.prefetch`):
    stored like a received study, never completed, drafted or answered with an SR."""


class JobState(StrEnum):
    PRIORS = "priors"
    """The patient's earlier studies are being found and fetched (io queue); then ``queued``, with or without them."""
    QUEUED = "queued"
    """Waiting for a cpu worker to prepare its pictures and prompt inputs."""
    PREPARING = "preparing"
    """A cpu worker is reading the study's files, order and priors and preparing what the model is shown."""
    PREPARED = "prepared"
    """Its inputs are in the prepared store: waiting for the model (gpu queue)."""
    DRAFTING = "drafting"
    DRAFTED = "drafted"
    """The draft is committed; its outputs (SR, ORU) are being built on the io queue."""
    DELIVERING = "delivering"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NEEDS_REVIEW = "needs_review"
    """A safety check whose policy is ``hold`` fired: nothing is built or sent until a radiologist
    releases the draft (then ``drafted``) or discards it."""
    DISCARDED = "discarded"
    """A radiologist or admin discarded the held draft, with a reason; nothing was sent."""


class JobPriority(StrEnum):
    """How soon a job is wanted: STAT jobs go before routine ones in every queue and every claim."""

    ROUTINE = "routine"
    STAT = "stat"


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    HELD = "held"
    """Must not go yet (``hl7.no_order``, ``hl7.no_patient_id``): waits for an admin to send it
    anyway (when it was built) or to cancel it; the job stays ``delivering`` meanwhile."""


class DeliveryChannel(StrEnum):
    SR = "sr"
    HL7 = "hl7"
    GROUNDING_SR = "grounding_sr"
    """The measurement report (TID 1500) of a grounded draft's boxes, beside the draft SR."""


FINAL_JOB_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.DISCARDED})
FINAL_DELIVERY_STATES = frozenset(
    {DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.CANCELLED}
)

ALLOWED_TRANSITIONS: dict[type[StrEnum], dict[StrEnum, frozenset[StrEnum]]] = {
    StudyState: {
        StudyState.RECEIVING: frozenset({StudyState.COMPLETE, StudyState.IDENTITY_CONFLICT}),
        # An instance arriving after completion reopens the study (a re-draft follows).
        StudyState.COMPLETE: frozenset({StudyState.RECEIVING, StudyState.IDENTITY_CONFLICT}),
        # An admin's resolution hands the study back to the quiet timer.
        StudyState.IDENTITY_CONFLICT: frozenset({StudyState.RECEIVING}),
        # A prior's instances naming different patients hold it like any study.
        StudyState.PRIOR: frozenset({StudyState.IDENTITY_CONFLICT}),
    },
    JobState: {
        # A slow or failed search never fails the job: it goes on to drafting without a prior.
        JobState.PRIORS: frozenset({JobState.QUEUED, JobState.CANCELLED}),
        JobState.QUEUED: frozenset({JobState.PREPARING, JobState.DRAFTING, JobState.FAILED, JobState.CANCELLED}),
        # PREPARING -> QUEUED: the cpu worker died mid-preparation and the sweep hands the job back.
        JobState.PREPARING: frozenset({JobState.PREPARED, JobState.QUEUED, JobState.FAILED, JobState.CANCELLED}),
        # PREPARED -> QUEUED: its kept inputs are gone (prepared again).
        JobState.PREPARED: frozenset({JobState.DRAFTING, JobState.QUEUED, JobState.FAILED, JobState.CANCELLED}),
        # DRAFTING -> PREPARED: a transient failure, or a worker died mid-draft and the job is handed
        # back (its inputs are still kept); -> QUEUED: its inputs are to be prepared again.
        JobState.DRAFTING: frozenset(
            {JobState.DRAFTED, JobState.DELIVERING, JobState.DONE, JobState.FAILED, JobState.CANCELLED,
             JobState.QUEUED, JobState.PREPARED, JobState.NEEDS_REVIEW}
        ),
        # A held draft is released (its outputs are built as usual) or discarded, or the job cancelled.
        JobState.NEEDS_REVIEW: frozenset({JobState.DRAFTED, JobState.DISCARDED, JobState.CANCELLED}),
        JobState.DISCARDED: frozenset(),
        JobState.DRAFTED: frozenset({JobState.DELIVERING, JobState.DONE, JobState.FAILED, JobState.CANCELLED}),
        JobState.DELIVERING: frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED}),
        JobState.DONE: frozenset(),
        # -> DELIVERING: an admin retries the deliveries of a job that already has its draft.
        JobState.FAILED: frozenset({JobState.QUEUED, JobState.DELIVERING}),
        JobState.CANCELLED: frozenset({JobState.QUEUED, JobState.DELIVERING}),
    },
    DeliveryState: {
        DeliveryState.PENDING: frozenset(
            {DeliveryState.SENDING, DeliveryState.FAILED, DeliveryState.CANCELLED}
        ),
        DeliveryState.SENDING: frozenset(
            {DeliveryState.DELIVERED, DeliveryState.PENDING, DeliveryState.FAILED, DeliveryState.CANCELLED}
        ),
        DeliveryState.DELIVERED: frozenset(),
        DeliveryState.FAILED: frozenset({DeliveryState.PENDING}),
        DeliveryState.CANCELLED: frozenset({DeliveryState.PENDING}),
        # Written held when built; an admin sends it anyway (pending) or cancels it.
        DeliveryState.HELD: frozenset({DeliveryState.PENDING, DeliveryState.CANCELLED}),
    },
}


def can_transition(current: StrEnum, target: StrEnum) -> bool:
    """True when the table allows ``current -> target``."""
    return target in ALLOWED_TRANSITIONS[type(current)].get(current, frozenset())


class TurnState(StrEnum):
    """One question to the model about a study: waiting for a drafting worker, being answered, done."""

    PENDING = "pending"
    ANSWERING = "answering"
    """The answer is being written; its text so far is saved as it comes."""
    ANSWERED = "answered"
    FAILED = "failed"
    """No answer, or only part of one: the reason is stated (model unavailable, time limit, expired)."""
