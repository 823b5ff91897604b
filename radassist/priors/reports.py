"""The report of a prior: the RIS's signed report, else a verified SR of the prior study, never our own draft.

The RIS's final (or corrected) report for the prior's accession number comes first: it is what the
radiologist signed.  Without one, a Structured Report found in the prior study counts only when
its VerificationFlag is VERIFIED, and never when it is one of our drafts, recognised three ways:
its SOP Instance UID is one we generated (``jobs.sr_sop_instance_uid``), its Manufacturer or Series
Description is ours, or its text carries our not-verified notice (a PACS may rewrite headers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

import pydicom
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radassist.db.tables import Job
from radassist.identifiers import accession_hash
from radassist.priors.results import PriorReport
from radassist.priors.values import dicom_date, dicom_time, text_of
from radassist.ris.context import latest_final_report
from radassist.sr import codes

#: Relationships whose items describe the document, not what it reports.
_CONTEXT_RELATIONSHIPS = frozenset({"HAS OBS CONTEXT", "HAS CONCEPT MOD", "HAS ACQ CONTEXT"})
_OUR_NOTICES = (codes.DRAFT_NOTICE, codes.DRAFT_NOTICE_ASCII)


class ReportBook(Protocol):
    """Where the search looks up what we know beyond the source: signed RIS reports, our own SRs."""

    def final_report(self, accession_number: str) -> PriorReport | None:
        """The RIS's newest final or corrected report for ``accession_number``."""

    def our_sr_uids(self, sop_instance_uids: Collection[str]) -> frozenset[str]:
        """Those of ``sop_instance_uids`` that are SRs we generated."""


class DatabaseReportBook:
    """:class:`ReportBook` on our database: ``reports`` by accession hash, ``jobs`` by SR UID."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def final_report(self, accession_number: str) -> PriorReport | None:
        key = accession_hash(accession_number)
        if key is None:
            return None
        with self._sessions() as session:
            report = latest_final_report(session, key)
            if report is None or not report.text.strip():
                return None
            return PriorReport(text=report.text, origin="ris", status=report.status)

    def our_sr_uids(self, sop_instance_uids: Collection[str]) -> frozenset[str]:
        uids = sorted({uid for uid in sop_instance_uids if uid})
        if not uids:
            return frozenset()
        with self._sessions() as session:
            found = session.scalars(select(Job.sr_sop_instance_uid).where(Job.sr_sop_instance_uid.in_(uids)))
            return frozenset(uid for uid in found if uid)


def _meaning(item: pydicom.Dataset) -> str:
    names = item.get("ConceptNameCodeSequence") or []
    return text_of(names[0], "CodeMeaning") if names else ""


def _lines(items: Iterable[pydicom.Dataset]) -> list[str]:
    lines: list[str] = []
    for item in items:
        if text_of(item, "RelationshipType").upper() in _CONTEXT_RELATIONSHIPS:
            continue
        kind = text_of(item, "ValueType").upper()
        if kind == "CONTAINER":
            heading = _meaning(item)
            children = _lines(item.get("ContentSequence") or [])
            if children:
                lines += ([f"{heading}:"] if heading else []) + children
        elif kind == "TEXT":
            text = str(item.get("TextValue") or "").strip()
            if text:
                lines.append(text)
        elif kind == "CODE":
            concepts = item.get("ConceptCodeSequence") or []
            value = text_of(concepts[0], "CodeMeaning") if concepts else ""
            if value:
                lines.append(f"{_meaning(item)}: {value}" if _meaning(item) else value)
    return lines


def sr_text(ds: pydicom.Dataset) -> str:
    """The narrative of an SR: section headings, TEXT items and coded findings, in document order."""
    return "\n".join(_lines(ds.get("ContentSequence") or [])).strip()


def is_our_draft(ds: pydicom.Dataset, our_uids: Collection[str] = frozenset()) -> bool:
    """True when ``ds`` is an SR we generated (by UID, equipment, series description or notice)."""
    if text_of(ds, "SOPInstanceUID") in our_uids:
        return True
    if text_of(ds, "Manufacturer") == codes.MANUFACTURER:
        return True
    if text_of(ds, "SeriesDescription").upper() == codes.SERIES_DESCRIPTION:
        return True
    text = sr_text(ds)
    return any(notice in text for notice in _OUR_NOTICES)


def report_from_sr(ds: pydicom.Dataset, our_uids: Collection[str] = frozenset()) -> PriorReport | None:
    """The report an SR carries when it is VERIFIED, has text and is not ours; else None."""
    if text_of(ds, "Modality").upper() != "SR" or "ContentSequence" not in ds:
        return None
    if text_of(ds, "VerificationFlag").upper() != "VERIFIED" or is_our_draft(ds, our_uids):
        return None
    text = sr_text(ds)
    if not text:
        return None
    return PriorReport(text=text, origin="sr", status="VERIFIED", sop_instance_uid=text_of(ds, "SOPInstanceUID"))


def _verified_at(ds: pydicom.Dataset) -> dt.datetime:
    observers = ds.get("VerifyingObserverSequence") or []
    stamp = text_of(observers[-1], "VerificationDateTime") if observers else ""
    clock = stamp[8:].split("+")[0].split("-")[0]  # DT may end in a UTC offset
    day = dicom_date(stamp[:8]) or dicom_date(ds.get("ContentDate"))
    time = dicom_time(clock) if clock else dicom_time(ds.get("ContentTime"))
    return dt.datetime.combine(day or dt.date.min, time or dt.time.min)


def choose_sr_report(datasets: Sequence[pydicom.Dataset], our_uids: Collection[str] = frozenset()) -> PriorReport | None:
    """The report of the most recently verified of ``datasets`` that qualifies (:func:`report_from_sr`)."""
    for ds in sorted(datasets, key=_verified_at, reverse=True):
        report = report_from_sr(ds, our_uids)
        if report is not None:
            return report
    return None
