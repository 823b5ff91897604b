"""Build the draft report as a DICOM SR document (TID 2000 "Basic Diagnostic Imaging Report").

Every place a human or a PACS might look says that it is an unverified AI draft: the document
flags (PARTIAL / UNVERIFIED / PRELIMINARY), the series description, the equipment module, the
contributing equipment, the device observer and the first Finding item.  Three SOP classes,
chosen per destination: Enhanced SR (default), Comprehensive SR, and Basic Text SR for old
archives; the content tree (:mod:`radassist.sr.content`) suits all three, the header
(:mod:`radassist.sr.header`) comes from the received study.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import highdicom as hd
import pydicom
from highdicom.sr.sop import _SR
from pydicom.uid import BasicTextSRStorage
from pydicom.valuerep import DA, TM

from radassist.priors.comparison import Comparison
from radassist.sr import codes
from radassist.sr.comparison import comparison_section, prior_evidence
from radassist.sr.content import build_content, coded_labels, key_images
from radassist.sr.header import (
    RequestedProcedure,
    check_predecessors,
    check_sources,
    contributing_equipment,
    contribution_datetime,
    evidence,
    fix_contribution_times,
    install_phi_guard,
    local_time,
    request_item,
)
from radassist.sr.values import CodedLabel, lo, paragraphs

logger = logging.getLogger(__name__)

SrClass = Literal["enhanced", "comprehensive", "basic"]
SR_CLASSES: tuple[SrClass, ...] = ("enhanced", "comprehensive", "basic")

install_phi_guard()


class BasicTextSR(_SR):
    """Basic Text SR (1.2.840.10008.5.1.4.1.1.88.11), for archives that know no newer SR class.

    highdicom builds Enhanced and Comprehensive SR; the Basic Text SR IOD has the same modules and
    only restricts the content tree, which :func:`radassist.sr.content.build_content` respects.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(sop_class_uid=BasicTextSRStorage, **kwargs)  # type: ignore[arg-type]


_SR_TYPES: dict[str, Callable[..., _SR]] = {
    "enhanced": hd.sr.EnhancedSR,
    "comprehensive": hd.sr.ComprehensiveSR,
    "basic": BasicTextSR,
}


def _check_arguments(findings: str, impression: str, model_name: str, software_version: str, sr_class: str,
                     uids: dict[str, str], requested_procedure: RequestedProcedure | None) -> None:
    if not isinstance(findings, str) or not isinstance(impression, str):
        raise TypeError('Arguments "findings" and "impression" must be strings.')
    if not paragraphs(findings) and not paragraphs(impression):
        raise ValueError('Arguments "findings" and "impression" are both empty.')
    if not model_name or not model_name.strip():
        raise ValueError('Argument "model_name" must not be empty.')
    if not software_version or not software_version.strip():
        raise ValueError('Argument "software_version" must not be empty.')
    if sr_class not in SR_CLASSES:
        raise ValueError('Argument "sr_class" must be "enhanced", "comprehensive" or "basic".')
    for name, uid in uids.items():
        if not isinstance(uid, str) or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", uid) or len(uid) > 64:
            raise ValueError(f'Argument "{name}" is not a valid DICOM UID.')
    if requested_procedure is not None and not isinstance(requested_procedure, RequestedProcedure):
        raise TypeError('Argument "requested_procedure" must be a RequestedProcedure or None.')


def _instantiate(sr_class: str, **kwargs: Any) -> _SR:
    """highdicom's SR object; its own errors become a ValueError without the values it quotes."""
    try:
        with warnings.catch_warnings():
            # highdicom warns about single-component names quoting the name itself (patient data).
            warnings.filterwarnings("ignore", message=r"The string .* person name", category=UserWarning)
            return _SR_TYPES[sr_class](**kwargs)
    except (AttributeError, KeyError) as exc:
        raise ValueError(f'Argument "sources" cannot be used as SR evidence ({type(exc).__name__}).') from None


def _finish(sr: _SR, header: pydicom.Dataset, local_now: dt.datetime, tz_offset: str | None) -> None:
    """Creation and series dates in the study's time zone, and the study's own descriptive attributes."""
    stamp = local_now.replace(microsecond=0)
    sr.InstanceCreationDate = DA(stamp.date())
    sr.InstanceCreationTime = TM(stamp.time())
    sr.SeriesDate = DA(stamp.date())
    sr.SeriesTime = TM(stamp.time())
    if tz_offset is not None:
        sr.TimezoneOffsetFromUTC = tz_offset
    fix_contribution_times(sr, contribution_datetime(local_now, tz_offset))
    for keyword in ("StudyDescription", "ReferringPhysicianName", "IssuerOfPatientID"):
        if keyword in header and keyword not in sr:
            sr[keyword] = copy.deepcopy(header[keyword])


def _all_evidence(sources: Sequence[pydicom.Dataset], comparison: Comparison | None,
                  comparison_sources: Sequence[pydicom.Dataset]) -> list[pydicom.Dataset]:
    """The study's own instances (the header source first), then the priors' not already among them."""
    items = evidence(sources)
    current_uids = {str(i.SOPInstanceUID) for i in items}
    return items + [ds for ds in prior_evidence(comparison, comparison_sources)
                    if str(ds.SOPInstanceUID) not in current_uids]


def build_draft_sr(
    sources: Sequence[pydicom.Dataset],
    *,
    findings: str,
    impression: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    model_name: str,
    model_revision: str | None,
    software_version: str,
    indication: str | None = None,
    now: dt.datetime | None = None,
    sr_class: SrClass = "enhanced",
    series_number: int = 9901,
    key_image_uids: Sequence[str] | None = None,
    labels: Sequence[CodedLabel | Sequence[str]] | None = None,
    requested_procedure: RequestedProcedure | None = None,
    predecessors: Sequence[pydicom.Dataset] | None = None,
    comparison: Comparison | None = None,
    comparison_sources: Sequence[pydicom.Dataset] = (),
    warnings: Sequence[str] | None = None,
) -> pydicom.Dataset:
    """Build the draft SR for the study whose received instances (headers) are ``sources``.

    ``key_image_uids``: the images the model was shown (IMAGE items in Findings); ``labels``: coded
    abnormalities; ``requested_procedure``: the Referenced Request Sequence (from the source's
    accession number when None); ``predecessors``: the SRs this one replaces (a re-draft);
    ``comparison``: the priors compared with, or why none (:mod:`radassist.sr.comparison`), whose
    instances (``comparison_sources``) are Pertinent Other Evidence; ``warnings``: sentences of
    automated checks, stated right after the draft notice.

    Raises ``TypeError``/``ValueError`` naming the argument; messages carry no patient data.
    """
    study_uid = check_sources(sources)
    _check_arguments(findings, impression, model_name, software_version, sr_class,
                     {"series_instance_uid": series_instance_uid, "sop_instance_uid": sop_instance_uid},
                     requested_procedure)
    coded, previous = coded_labels(labels), check_predecessors(predecessors)
    if isinstance(warnings, str) or not all(isinstance(w, str) for w in warnings or ()):
        raise TypeError('Argument "warnings" must be a sequence of strings.')
    items = _all_evidence(sources, comparison, comparison_sources)
    header = items[0]
    local_now, tz_offset = local_time(now or dt.datetime.now(dt.UTC), header)
    content = build_content(findings=findings, impression=impression, model_name=model_name,
                            model_revision=model_revision, indication=indication, labels=coded,
                            key_images=key_images(items, key_image_uids),
                            comparison=comparison_section(comparison) if comparison is not None else None,
                            warnings=warnings or ())
    if requested_procedure is None and header.get("AccessionNumber"):
        requested_procedure = RequestedProcedure()
    institution, department = header.get("InstitutionName"), header.get("InstitutionalDepartmentName")
    sr = _instantiate(
        sr_class,
        evidence=items,
        content=content,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=1,
        manufacturer=codes.MANUFACTURER,
        is_complete=False,
        is_final=False,
        is_verified=False,
        institution_name=lo(institution) or None,
        institutional_department_name=lo(department) or None,
        requested_procedures=[request_item(study_uid, requested_procedure, header)] if requested_procedure else None,
        previous_versions=previous or None,
        contributing_equipment=[contributing_equipment(model_name, model_revision, software_version, local_now,
                                                       tz_offset)],
        specific_character_set="ISO_IR 192",
        series_description=codes.SERIES_DESCRIPTION,
        manufacturer_model_name=lo(model_name),
        software_versions=lo(software_version),
        content_date=local_now.date(),
        content_time=local_now.time().replace(microsecond=0),
    )
    _finish(sr, header, local_now, tz_offset)
    logger.debug("built draft SR class=%s sop_instance_uid=%s study_instance_uid=%s", sr_class, sop_instance_uid,
                 study_uid)
    return sr


__all__ = ["SR_CLASSES", "BasicTextSR", "CodedLabel", "RequestedProcedure", "SrClass", "build_draft_sr"]
