"""What a search for priors takes and gives: the current study in plain values, and a frozen result.

A result always says, in a stable code and in plain words, why no prior (or fewer than the rule
asked for) is available, so the draft and the study page can say it.  Fields that hold patient
data or report text are left out of every ``repr``: a result may be logged by mistake.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import pydicom

from radassist.errors import TransientFailure
from radassist.priors.values import dicom_date, dicom_time, text_of

#: Why no prior (or fewer than asked) is available, in words a radiologist reads on the study page.
REASONS: dict[str, str] = {
    "priors.no_source": "No prior source is configured.",
    "priors.disabled": "Priors are not searched for this kind of study.",
    "priors.no_patient_id": "The study has no patient ID to search by.",
    "priors.none_found": "No earlier relevant study of this patient was found.",
    "priors.source_down": "The prior source could not be reached.",
    "priors.refused": "The prior source refused the request.",
    "priors.source_error": "The prior source answered with an error.",
    "priors.timeout": "The prior source did not answer within the time limit.",
    "priors.retrieve_failed": "An earlier study was found but its images could not be fetched.",
    "priors.store_failed": "Fetched prior images could not be stored.",
    "priors.unreadable": "The study's own headers could not be read to search by.",
    "priors.failed": "The search for priors failed unexpectedly.",
}


class PriorSourceError(TransientFailure):
    """A source could not answer or deliver; ``code`` is one of :data:`REASONS`' keys."""

    code = "priors.source_error"


@dataclass(frozen=True)
class CurrentStudy:
    """The study being drafted, as the search needs it (from its header: :meth:`from_dataset`)."""

    study_instance_uid: str
    patient_id: str
    issuer_of_patient_id: str = ""
    study_date: dt.date | None = None
    study_time: dt.time | None = None
    modalities: tuple[str, ...] = ()
    body_part: str = ""

    def __repr__(self) -> str:  # never print the patient ID
        return f"<CurrentStudy {self.modalities} {self.body_part}>"

    @classmethod
    def from_dataset(cls, ds: pydicom.Dataset, *, modalities: tuple[str, ...] = ()) -> CurrentStudy:
        """The current study from one instance's header; ``modalities`` default to its Modality."""
        modality = text_of(ds, "Modality").upper()
        return cls(
            study_instance_uid=text_of(ds, "StudyInstanceUID"),
            patient_id=text_of(ds, "PatientID"),
            issuer_of_patient_id=text_of(ds, "IssuerOfPatientID"),
            study_date=dicom_date(ds.get("StudyDate")),
            study_time=dicom_time(ds.get("StudyTime")),
            modalities=modalities or ((modality,) if modality else ()),
            body_part=text_of(ds, "BodyPartExamined").upper(),
        )


@dataclass(frozen=True)
class PriorReport:
    """The report of a prior: the RIS's signed report, else a verified SR found in the prior study."""

    text: str = field(repr=False)
    origin: Literal["ris", "sr"]
    status: str
    """OBR-25 (``F``, ``C``) for a RIS report; ``VERIFIED`` for an SR."""
    sop_instance_uid: str | None = None
    """The SR's SOP Instance UID when the report came from an SR."""


@dataclass(frozen=True)
class ChosenStudy:
    """A relevant earlier study about to be fetched: what the caller needs to make room for its images.

    Announced (``on_chosen``) before its first image is fetched, so a caller can record where the
    images belong before a C-MOVE sends them to its listener.
    """

    study_instance_uid: str
    study_date: dt.date | None
    study_description: str = field(repr=False)
    accession_number_hash: str | None = field(repr=False)
    modalities: tuple[str, ...] = ()


@dataclass(frozen=True)
class PriorStudy:
    """One relevant earlier study: what it is, what of it was fetched, and its report."""

    source: str
    study_instance_uid: str
    study_date: dt.date | None
    study_time: dt.time | None
    study_description: str
    modalities: tuple[str, ...]
    accession_number_hash: str | None
    series_instance_uids: tuple[str, ...]
    sop_instance_uids: tuple[str, ...]
    """The images handed to the sink; with ``delivery`` ``moved`` those the source sent to the move
    destination; with ``none`` those chosen (not fetched)."""
    delivery: Literal["handed", "moved", "none"]
    """``handed``: each image went to the caller's sink; ``moved``: C-MOVE sent them to the move
    destination; ``none``: no sink was given, nothing was fetched."""
    report: PriorReport | None
    unread_report_uids: tuple[str, ...] = ()
    """SRs of the prior study moved with its images but not read here (C-MOVE sources): the caller
    reads them from its store with :func:`radassist.priors.reports.report_from_sr`."""


@dataclass(frozen=True)
class PriorsResult:
    """What a search found and fetched, or why no prior is available."""

    priors: tuple[PriorStudy, ...]
    reason_code: str | None
    """None when the search ran to its end and found priors; else a key of :data:`REASONS` (also
    with priors, when the search was cut short after finding some)."""
    reason: str
    """The reason in plain words (empty when ``reason_code`` is None)."""
    elapsed_seconds: float
    sources_tried: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return bool(self.priors)

    @classmethod
    def unavailable(cls, code: str, *, elapsed_seconds: float = 0.0, sources_tried: tuple[str, ...] = ()) -> PriorsResult:
        return cls((), code, REASONS[code], elapsed_seconds, sources_tried)
