"""Build the HL7 v2 ORU^R01 that tells the RIS a draft exists.

Layout: MSH, PID, ORC (RE), OBR, NTE (the draft notice, then one NTE per warning of an automated
check that the outputs state, :mod:`radassist.safety.gate`), then one OBX per line of text (TX, or FT
by ``[hl7] obx_value_type``): the notice first, the comparison with the patient's priors when they
were searched (LOINC 55114-3, the SR's section heading: each prior's description and date, or why
none is available), the Findings lines (LOINC 59776-5), the Impression lines (LOINC 19005-8), and
an OBX with the Study Instance UID so that the RIS can link to the images.  HL7 v2.5.1 by default,
v2.3.1 for older RIS (``[hl7] version``).  Every field
written is a row of :data:`radassist.hl7.oru_fields.ORU_FIELDS`, which says where its value comes
from and what happens when it is too long.

Every value is escaped (:mod:`radassist.hl7.escaping`), and the finished text must read back,
with python-hl7, as exactly the segments and values meant, and pass hl7apy's STRICT validation;
otherwise nothing is stored or sent (:class:`PermanentFailure`).  Placer and filler order numbers
are the RIS's own when its order was received (:mod:`radassist.ris.context`), else the accession
number; ``[hl7] accession_field = "OBR-18"`` also puts the accession in OBR-18.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence

import pydicom
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message

from radassist.config import Hl7Settings
from radassist.errors import PermanentFailure
from radassist.hl7.er7 import Segment, check_read_back, render
from radassist.hl7.oru_fields import SegmentWriter, fits
from radassist.hl7.oru_text import obx_values
from radassist.hl7.study_values import Procedure, StudyValues, read_study
from radassist.priors.comparison import Comparison
from radassist.ris.context import OrderContext
from radassist.sr import codes
from radassist.sr.header import local_time

logger = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("2.5.1", "2.3.1")
_CONTROL_ID_MAX = 20  # MSH-10 is ST(20) in v2.5.1

Coded = tuple[str, str, str]
FINDINGS_CODE: Coded = (codes.FINDINGS.value, codes.FINDINGS.meaning, "LN")
IMPRESSION_CODE: Coded = (codes.IMPRESSIONS.value, codes.IMPRESSIONS.meaning, "LN")
COMPARISON_CODE: Coded = (codes.PRIOR_PROCEDURE_DESCRIPTIONS.value, codes.PRIOR_PROCEDURE_DESCRIPTIONS.meaning, "LN")
STUDY_UID_CODE: Coded = (codes.STUDY_INSTANCE_UID.value, codes.STUDY_INSTANCE_UID.meaning, "DCM")
FINDINGS_OBX3 = "^".join(FINDINGS_CODE)
IMPRESSION_OBX3 = "^".join(IMPRESSION_CODE)
COMPARISON_OBX3 = "^".join(COMPARISON_CODE)
STUDY_UID_OBX3 = "^".join(STUDY_UID_CODE)
NTE_NOTICE = (
    "This report text is an AI-generated draft, not reviewed or verified by a radiologist. "
    "Preliminary, for review only."
)

#: OBR-25 (HL7 table 0123) -> OBX-11 (table 0085), the closest observation status.
OBX_STATUS = {"R": "R", "P": "P", "I": "I", "S": "I", "A": "P"}


def hl7_datetime(value: dt.datetime) -> str:
    """A timezone-aware HL7 DTM to the second, with its offset (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.strftime("%Y%m%d%H%M%S%z")


def _check_arguments(
    source: object, control_id: str, study_instance_uid: str, version: str, order: object
) -> None:
    if not isinstance(source, pydicom.Dataset):
        raise TypeError('Argument "source" must be a pydicom Dataset.')
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f'Argument "version" must be one of {", ".join(SUPPORTED_VERSIONS)}.')
    if order is not None and not isinstance(order, OrderContext):
        raise TypeError('Argument "order" must be an OrderContext or None.')
    if not re.fullmatch(rf"[A-Za-z0-9._-]{{1,{_CONTROL_ID_MAX}}}", control_id or ""):
        raise ValueError(
            f'Argument "control_id" must be 1-{_CONTROL_ID_MAX} characters of letters, digits, ".", "_" or "-".'
        )
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", study_instance_uid or ""):
        raise ValueError('Argument "study_instance_uid" is not a valid DICOM UID.')


def _msh(hl7: Hl7Settings, version: str, control_id: str, now: dt.datetime) -> Segment:
    msh = SegmentWriter("MSH")
    msh.put("MSH-3", hl7.sending_application)
    msh.put("MSH-4", hl7.sending_facility)
    msh.put("MSH-5", hl7.receiving_application)
    msh.put("MSH-6", hl7.receiving_facility)
    msh.put("MSH-7", hl7_datetime(now))
    msh.put("MSH-9.1", "ORU")
    msh.put("MSH-9.2", "R01")
    if version != "2.3.1":
        msh.put("MSH-9.3", "ORU_R01")
    msh.put("MSH-10", control_id)
    msh.put("MSH-11", "P")
    msh.put("MSH-12", version)
    msh.put("MSH-18", "UNICODE" if version == "2.3.1" else "UNICODE UTF-8")
    return msh.segment


def _pid(study: StudyValues) -> Segment:
    pid = SegmentWriter("PID")
    pid.put("PID-1", "1")
    pid.put("PID-3.1", study.patient_id)
    pid.put("PID-3.4", study.issuer)
    pid.put("PID-3.5", "MR")
    for repetition, parts in enumerate(study.names, start=1):
        for position, part in zip(
            ("PID-5.1", "PID-5.2", "PID-5.3", "PID-5.4", "PID-5.5"), parts, strict=True
        ):
            pid.put(position, part, repetition=repetition)
    pid.put("PID-7", study.birth_date)
    pid.put("PID-8", study.sex)
    return pid.segment


def _order_numbers(order: OrderContext | None, accession: str) -> dict[str, str | None]:
    """Placer and filler (number, namespace): the stored order's, else the accession number."""
    placer = order.placer_order_number if order else None
    filler = order.filler_order_number if order else None
    return {
        "2.1": placer or accession,
        "2.2": (order.placer_namespace if order and placer else None),
        "3.1": filler or accession,
        "3.2": (order.filler_namespace if order and filler else None),
    }


def _ordered_procedure(order: OrderContext | None, study: StudyValues) -> Procedure:
    if order is not None and (order.procedure_code or order.procedure_text):
        return Procedure(
            order.procedure_code or "",
            order.procedure_text or order.procedure_code or "",
            order.procedure_system or "",
        )
    return study.procedure


def _order_segments(
    study: StudyValues, order: OrderContext | None, hl7: Hl7Settings, now: dt.datetime
) -> list[Segment]:
    numbers = _order_numbers(order, study.accession)
    orc, obr = SegmentWriter("ORC"), SegmentWriter("OBR")
    orc.put("ORC-1", "RE")
    obr.put("OBR-1", "1")
    for suffix, value in numbers.items():
        orc.put(f"ORC-{suffix}", value)
        obr.put(f"OBR-{suffix}", value)
    orc.put("ORC-5", "CM")
    ordered = _ordered_procedure(order, study)
    if ordered.code and fits("OBR-4.1", ordered.code):
        obr.put("OBR-4.1", ordered.code)
        obr.put("OBR-4.3", ordered.system)
    obr.put("OBR-4.2", ordered.text)
    obr.put("OBR-7", study.study_datetime)
    if hl7.accession_field == "OBR-18":
        obr.put("OBR-18", study.accession)
    obr.put("OBR-22", hl7_datetime(now))
    obr.put("OBR-24", "RAD")
    obr.put("OBR-25", hl7.result_status)
    return [orc.segment, obr.segment]


def _notes(warnings: Sequence[str]) -> list[Segment]:
    """The draft notice, then each warning, one NTE each."""
    segments = []
    for set_id, text in enumerate((NTE_NOTICE, *warnings), start=1):
        nte = SegmentWriter("NTE")
        nte.put("NTE-1", str(set_id))
        nte.put("NTE-2", "L")
        nte.put("NTE-3", text)
        segments.append(nte.segment)
    return segments


def _observations(
    findings: list[str], impression: list[str], study_instance_uid: str, hl7: Hl7Settings, now: dt.datetime,
    comparison: Sequence[str] = (),
) -> list[Segment]:
    text_type = hl7.obx_value_type
    rows: list[tuple[str, Coded, str]] = [(text_type, FINDINGS_CODE, codes.DRAFT_NOTICE_ASCII)]
    rows += [(text_type, COMPARISON_CODE, value) for value in comparison]
    rows += [(text_type, FINDINGS_CODE, value) for value in findings]
    rows += [(text_type, IMPRESSION_CODE, value) for value in impression]
    rows.append(("ST", STUDY_UID_CODE, study_instance_uid))
    segments = []
    for set_id, (value_type, identifier, value) in enumerate(rows, start=1):
        obx = SegmentWriter("OBX")
        obx.put("OBX-1", str(set_id))
        obx.put("OBX-2", value_type)
        for position, part in zip(("OBX-3.1", "OBX-3.2", "OBX-3.3"), identifier, strict=True):
            obx.put(position, part)
        obx.put("OBX-4", "1")  # one sub-ID per section: its lines belong together (required in v2.3.1)
        obx.put("OBX-5", value, datatype=value_type)
        obx.put("OBX-11", OBX_STATUS[hl7.result_status])
        obx.put("OBX-14", hl7_datetime(now))
        segments.append(obx.segment)
    return segments


def validate_strict(er7: str, what: str) -> None:
    """Raise :class:`PermanentFailure` unless hl7apy accepts ``er7`` at STRICT validation."""
    try:
        parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True).validate()
    except HL7apyException as exc:
        # hl7apy's messages quote the offending value, which may be patient data.
        raise PermanentFailure(
            f"the {what} is not valid HL7 ({type(exc).__name__}), so it was neither stored nor sent",
            code="hl7.build.invalid",
        ) from None


def oru_segments(
    source: pydicom.Dataset,
    *,
    findings: str,
    impression: str,
    control_id: str,
    study_instance_uid: str,
    hl7: Hl7Settings,
    now: dt.datetime,
    version: str | None = None,
    order: OrderContext | None = None,
    comparison: Comparison | None = None,
    warnings: Sequence[str] = (),
) -> list[Segment]:
    """The ORU^R01's segments as meant (plain values, not yet ER7); arguments as :func:`build_oru`."""
    version = version or hl7.version
    _check_arguments(source, control_id, study_instance_uid, version, order)
    if comparison is not None and not isinstance(comparison, Comparison):
        raise TypeError('Argument "comparison" must be a Comparison or None.')
    comparison_values = obx_values("\n".join(comparison.lines()), hl7.obx_value_type) if comparison else []
    if isinstance(warnings, str) or not all(isinstance(w, str) for w in warnings):
        raise TypeError('Argument "warnings" must be a sequence of strings.')
    findings_values = obx_values(findings, hl7.obx_value_type)
    impression_values = obx_values(impression, hl7.obx_value_type)
    if not findings_values and not impression_values:
        raise ValueError('Arguments "findings" and "impression" are both empty.')
    study = read_study(source)
    now = local_time(now, source)[0]  # the study's time zone, as the SR's dates (radassist.sr.header)
    if not study.patient_id:
        raise PermanentFailure(
            "the study has no PatientID, so the RIS could not file the result: no ORU^R01 was built",
            code="hl7.no_patient_id",
        )
    return [
        _msh(hl7, version, control_id, now),
        _pid(study),
        *_order_segments(study, order, hl7, now),
        *_notes(warnings),
        *_observations(findings_values, impression_values, study_instance_uid, hl7, now, comparison_values),
    ]


def build_oru(
    source: pydicom.Dataset,
    *,
    findings: str,
    impression: str,
    control_id: str,
    study_instance_uid: str,
    hl7: Hl7Settings,
    now: dt.datetime,
    version: str | None = None,
    order: OrderContext | None = None,
    comparison: Comparison | None = None,
    warnings: Sequence[str] = (),
) -> str:
    """Return the ORU^R01 as ER7 text, segments separated by ``\\r``.

    ``source`` is one header of the study (patient and order attributes); ``control_id`` is
    MSH-10, stored with the delivery and reused on every retry.  ``version`` defaults to
    ``hl7.version``.  ``order``, the RIS's order for this accession when one was received, gives
    the placer/filler order numbers (ORC-2/3, OBR-2/3) and the requested procedure (OBR-4);
    without it both numbers are the accession number.  ``comparison``, when the job's priors were
    searched, adds the comparison OBX (each prior compared with, or why none is available).
    ``warnings`` are sentences of the automated checks to state, one NTE each after the draft notice.

    Raises ``TypeError``/``ValueError`` naming a bad argument, and :class:`PermanentFailure`
    when the study's data cannot make a safe message (``hl7.no_patient_id``,
    ``hl7.value_too_long``, ``hl7.build.mismatch``, ``hl7.build.invalid``); no message carries
    patient data.
    """
    segments = oru_segments(
        source,
        findings=findings,
        impression=impression,
        control_id=control_id,
        study_instance_uid=study_instance_uid,
        hl7=hl7,
        now=now,
        version=version,
        order=order,
        comparison=comparison,
        warnings=warnings,
    )
    er7 = render(segments)
    check_read_back(er7, segments, "ORU^R01")
    validate_strict(er7, "ORU^R01")
    logger.debug("built ORU^R01 control_id=%s with %d segments", control_id, len(segments))
    return er7
