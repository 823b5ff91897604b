"""A source's answers at study, series and image level, read from the datasets it returned.

Every kind of source answers with DICOM attributes (a C-FIND identifier, a QIDO-RS JSON dataset,
Orthanc's main DICOM tags), so each is turned into a :class:`pydicom.Dataset` and read here, once.
Answers keep patient identifiers only to check them against the current study; no ``repr`` shows them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pydicom

from radassist.priors.values import dicom_date, dicom_time, text_of


@dataclass(frozen=True)
class StudyQuery:
    """What is asked of a source: one patient's studies between two dates (inclusive)."""

    patient_id: str = field(repr=False)
    date_from: dt.date
    date_to: dt.date

    @property
    def date_range(self) -> str:
        """The DICOM range matching value, ``YYYYMMDD-YYYYMMDD``."""
        return f"{self.date_from:%Y%m%d}-{self.date_to:%Y%m%d}"


@dataclass(frozen=True)
class StudyAnswer:
    study_instance_uid: str
    patient_id: str = field(repr=False)
    issuer_of_patient_id: str = field(repr=False)
    study_date: dt.date | None
    study_time: dt.time | None
    study_description: str = field(repr=False)
    accession_number: str = field(repr=False)
    modalities: tuple[str, ...]
    locator: str = ""
    """The source's own handle of the study (Orthanc's ID), when it has one."""

    @classmethod
    def from_dataset(cls, ds: pydicom.Dataset, *, locator: str = "") -> StudyAnswer:
        modalities = ds.get("ModalitiesInStudy") or ()
        if isinstance(modalities, str):
            modalities = (modalities,)
        return cls(
            study_instance_uid=text_of(ds, "StudyInstanceUID"),
            patient_id=text_of(ds, "PatientID"),
            issuer_of_patient_id=text_of(ds, "IssuerOfPatientID"),
            study_date=dicom_date(ds.get("StudyDate")),
            study_time=dicom_time(ds.get("StudyTime")),
            study_description=text_of(ds, "StudyDescription"),
            accession_number=text_of(ds, "AccessionNumber"),
            modalities=tuple(str(m).strip().upper() for m in modalities if str(m).strip()),
            locator=locator,
        )


@dataclass(frozen=True)
class SeriesAnswer:
    series_instance_uid: str
    modality: str
    body_part: str
    series_description: str = field(repr=False)
    series_number: int | None = None
    locator: str = ""

    @classmethod
    def from_dataset(cls, ds: pydicom.Dataset, *, locator: str = "") -> SeriesAnswer:
        number = text_of(ds, "SeriesNumber")
        return cls(
            series_instance_uid=text_of(ds, "SeriesInstanceUID"),
            modality=text_of(ds, "Modality").upper(),
            body_part=text_of(ds, "BodyPartExamined").upper(),
            series_description=text_of(ds, "SeriesDescription"),
            series_number=int(number) if number.lstrip("-").isdigit() else None,
            locator=locator,
        )


@dataclass(frozen=True)
class InstanceAnswer:
    sop_instance_uid: str
    sop_class_uid: str = ""
    instance_number: int | None = None
    view_position: str = ""
    locator: str = ""

    @classmethod
    def from_dataset(cls, ds: pydicom.Dataset, *, locator: str = "") -> InstanceAnswer:
        number = text_of(ds, "InstanceNumber")
        return cls(
            sop_instance_uid=text_of(ds, "SOPInstanceUID"),
            sop_class_uid=text_of(ds, "SOPClassUID"),
            instance_number=int(number) if number.lstrip("-").isdigit() else None,
            view_position=text_of(ds, "ViewPosition").upper(),
            locator=locator,
        )


@dataclass(frozen=True)
class FetchedInstance:
    """One retrieved DICOM Part 10 file, handed to the caller's sink."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    data: bytes = field(repr=False)
