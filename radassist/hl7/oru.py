"""Build the HL7 v2 ORU^R01 that tells the RIS a draft exists.

The message is built with hl7apy at STRICT validation, so a field too long or a value outside
its table fails here rather than at the RIS.  Free text (report lines, names, accession
numbers) is always set through hl7apy's datatypes, which escape ``| ^ & ~ \\``; only our own
constants are written as raw ER7.

Layout: MSH, PID, ORC (RE), OBR, NTE (the draft notice), then one OBX per line (TX, or FT by
``[hl7] obx_value_type``): the notice first, the Findings lines (LOINC 59776-5), the Impression
lines (LOINC 19005-8), and an OBX with the Study Instance UID so that the RIS can link to the
images.  HL7 v2.5.1 by default, v2.3.1 for older RIS (``[hl7] version``).  Placer and filler
order numbers are the RIS's own when its order was received (radassist.ris.context), else the
accession number; ``[hl7] accession_field = "OBR-18"`` also puts the accession in OBR-18.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import pydicom
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.exceptions import HL7apyException
from hl7apy.factories import datatype_factory

from radassist.config import Hl7Settings
from radassist.ris.context import OrderContext
from radassist.sr import codes

logger = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("2.5.1", "2.3.1")
# hl7apy types a parsed OBX-5 of type "varies" as ST; STRICT allows 199 characters there, so
# long lines are wrapped into several OBX segments.
_OBX_TEXT_MAX = 199
_CONTROL_ID_MAX = 20  # MSH-10 is ST(20) in v2.5.1

FINDINGS_OBX3 = f"{codes.FINDINGS.value}^{codes.FINDINGS.meaning}^LN"
IMPRESSION_OBX3 = f"{codes.IMPRESSIONS.value}^{codes.IMPRESSIONS.meaning}^LN"
STUDY_UID_OBX3 = f"{codes.STUDY_INSTANCE_UID.value}^{codes.STUDY_INSTANCE_UID.meaning}^DCM"
NTE_NOTICE = (
    "This report text is an AI-generated draft, not reviewed or verified by a radiologist. "
    "Preliminary, for review only."
)

# OBR-25 (HL7 table 0123) -> OBX-11 (table 0085), the closest observation status.
_OBX_STATUS = {"R": "R", "P": "P", "I": "I", "S": "I", "A": "P"}
# DICOM Patient's Sex -> HL7 table 0001.
_SEX = {"M": "M", "F": "F", "O": "O"}


def _escaped(datatype: str, value: str, version: str) -> str:
    """``value`` as ER7 text with the encoding characters escaped by hl7apy."""
    return str(
        datatype_factory(
            datatype, value, version=version, validation_level=VALIDATION_LEVEL.TOLERANT
        ).to_er7()
    )


def _typed(datatype: str, value: str, version: str) -> Any:
    return datatype_factory(datatype, value, version=version, validation_level=VALIDATION_LEVEL.STRICT)


def _wrap(line: str, version: str, limit: int = _OBX_TEXT_MAX) -> list[str]:
    """Split a line at word boundaries so that each escaped piece fits ``limit`` characters."""
    pieces: list[str] = []
    current = ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if len(_escaped("TX", candidate, version)) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        current = ""
        # A single word longer than the limit is cut, character by character.
        for char in word:
            if len(_escaped("TX", current + char, version)) > limit:
                pieces.append(current)
                current = ""
            current += char
    if current:
        pieces.append(current)
    return pieces


def _lines(text: str, version: str) -> list[str]:
    out: list[str] = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if line:
            out.extend(_wrap(line, version))
    return out


def _hl7_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.strftime("%Y%m%d%H%M%S%z")


def _study_datetime(source: pydicom.Dataset) -> str | None:
    """StudyDate + StudyTime as an HL7 DTM (fractions cut to 4 digits), or None."""
    date = str(source.get("StudyDate") or "").strip()
    if not re.fullmatch(r"\d{8}", date):
        return None
    time = str(source.get("StudyTime") or "").strip()
    match = re.fullmatch(r"(\d{2,6})(?:\.(\d{1,6}))?", time)
    if not match:
        return date
    whole = match.group(1)
    if len(whole) % 2:
        whole = whole[:-1]
    value = date + whole
    if match.group(2) and len(whole) == 6:
        value += "." + match.group(2)[:4]
    return value


def _procedure(source: pydicom.Dataset) -> tuple[str | None, str, str | None]:
    """(code, text, coding system) for OBR-4 from the DICOM order, falling back to descriptions."""
    for seq_keyword in ("RequestedProcedureCodeSequence", "ProcedureCodeSequence"):
        seq = source.get(seq_keyword)
        if seq:
            item = seq[0]
            value = item.get("CodeValue")
            meaning = item.get("CodeMeaning")
            scheme = item.get("CodingSchemeDesignator")
            if value and meaning:
                return str(value), str(meaning), str(scheme) if scheme else None
    for keyword in ("StudyDescription", "RequestedProcedureDescription"):
        text = source.get(keyword)
        if text:
            return None, str(text), None
    modality = source.get("Modality")
    return None, f"{modality} imaging study" if modality else "Imaging study", None


def _order_number(number: str | None, namespace: str | None, fallback: str) -> tuple[str, str | None]:
    """(entity id, namespace) of an order number: the stored order's, else the accession."""
    if number:
        return number, namespace or None
    return fallback, None


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
) -> str:
    """Return the ORU^R01 as ER7 text, segments separated by ``\\r``.

    ``source`` is one header of the study (patient and order attributes); ``control_id`` is
    MSH-10, stored with the delivery and reused on every retry.  ``version`` defaults to
    ``hl7.version``.  ``order``, the RIS's order for this accession when one was received, gives
    the placer/filler order numbers (ORC-2/3, OBR-2/3) and the requested procedure (OBR-4);
    without it both numbers are the accession number.  Raises ``ValueError`` naming the argument
    or the field; messages carry no patient data.
    """
    if not isinstance(source, pydicom.Dataset):
        raise TypeError('Argument "source" must be a pydicom Dataset.')
    version = version or hl7.version
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f'Argument "version" must be one of {", ".join(SUPPORTED_VERSIONS)}.')
    if order is not None and not isinstance(order, OrderContext):
        raise TypeError('Argument "order" must be an OrderContext or None.')
    if (
        not control_id
        or len(control_id) > _CONTROL_ID_MAX
        or not re.fullmatch(r"[A-Za-z0-9._-]+", control_id)
    ):
        raise ValueError(
            f'Argument "control_id" must be 1-{_CONTROL_ID_MAX} characters of letters, digits, ".", "_" or "-".'
        )
    if not study_instance_uid or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", study_instance_uid):
        raise ValueError('Argument "study_instance_uid" is not a valid DICOM UID.')
    finding_lines = _lines(findings, version)
    impression_lines = _lines(impression, version)
    if not finding_lines and not impression_lines:
        raise ValueError('Arguments "findings" and "impression" are both empty.')
    patient_id = str(source.get("PatientID") or "").strip()
    if not patient_id:
        raise ValueError('Argument "source" has no PatientID; the RIS cannot file the result.')

    field = "MSH"
    try:
        msg = Message("ORU_R01", version=version, validation_level=VALIDATION_LEVEL.STRICT)
        msh = msg.msh
        msh.msh_3 = hl7.sending_application
        msh.msh_4 = hl7.sending_facility
        msh.msh_5 = hl7.receiving_application
        msh.msh_6 = hl7.receiving_facility
        msh.msh_7 = _hl7_datetime(now)
        msh.msh_9 = "ORU^R01^ORU_R01" if version != "2.3.1" else "ORU^R01"
        msh.msh_10 = control_id
        msh.msh_11 = "P"
        msh.msh_12 = version
        msh.msh_18 = "UNICODE UTF-8" if version != "2.3.1" else "UNICODE"

        result = msg.add_group("ORU_R01_PATIENT_RESULT")
        field = "PID"
        pid = result.add_group("ORU_R01_PATIENT").add_segment("PID")
        pid.pid_1 = "1"
        pid.pid_3.cx_1 = _typed("ST", patient_id, version)
        issuer = str(source.get("IssuerOfPatientID") or "").strip()
        if issuer:
            pid.pid_3.cx_4.hd_1 = _typed("IS", issuer, version)
        pid.pid_3.cx_5 = "MR"
        name = source.get("PatientName")
        if name:
            parts = [str(p) for p in (name.family_name, name.given_name, name.middle_name)]
            if parts[0]:
                pid.pid_5.xpn_1.fn_1 = _typed("ST", parts[0], version)
            if parts[1]:
                pid.pid_5.xpn_2 = _typed("ST", parts[1], version)
            if parts[2]:
                pid.pid_5.xpn_3 = _typed("ST", parts[2], version)
            if name.name_suffix:
                pid.pid_5.xpn_4 = _typed("ST", str(name.name_suffix), version)
            if name.name_prefix:
                pid.pid_5.xpn_5 = _typed("ST", str(name.name_prefix), version)
        birth = str(source.get("PatientBirthDate") or "").strip()
        if re.fullmatch(r"\d{8}", birth):
            pid.pid_7 = birth
        sex = _SEX.get(str(source.get("PatientSex") or "").strip().upper())
        pid.pid_8 = sex or "U"

        order_group = result.add_group("ORU_R01_ORDER_OBSERVATION")
        accession = str(source.get("AccessionNumber") or "").strip()
        placer = _order_number(
            order.placer_order_number if order else None, order.placer_namespace if order else None, accession
        )
        filler = _order_number(
            order.filler_order_number if order else None, order.filler_namespace if order else None, accession
        )
        field = "ORC"
        orc = order_group.add_segment("ORC")
        orc.orc_1 = "RE"
        if placer[0]:
            orc.orc_2.ei_1 = _typed("ST", placer[0], version)
            if placer[1]:
                orc.orc_2.ei_2 = _typed("IS", placer[1], version)
        if filler[0]:
            orc.orc_3.ei_1 = _typed("ST", filler[0], version)
            if filler[1]:
                orc.orc_3.ei_2 = _typed("IS", filler[1], version)
        orc.orc_5 = "CM"

        field = "OBR"
        obr = order_group.add_segment("OBR")
        obr.obr_1 = "1"
        if placer[0]:
            obr.obr_2.ei_1 = _typed("ST", placer[0], version)
            if placer[1]:
                obr.obr_2.ei_2 = _typed("IS", placer[1], version)
        if filler[0]:
            obr.obr_3.ei_1 = _typed("ST", filler[0], version)
            if filler[1]:
                obr.obr_3.ei_2 = _typed("IS", filler[1], version)
        if order is not None and (order.procedure_code or order.procedure_text):
            code, text, system = (
                order.procedure_code,
                order.procedure_text or order.procedure_code or "",
                order.procedure_system,
            )
        else:
            code, text, system = _procedure(source)
        if code:
            obr.obr_4.ce_1 = _typed("ST", code[:20], version)
        obr.obr_4.ce_2 = _typed("ST", text[:199], version)
        if code and system:
            # CE.3 is ID from v2.5, ST before.
            obr.obr_4.ce_3 = _typed("ST" if version == "2.3.1" else "ID", system[:20], version)
        study_dt = _study_datetime(source)
        if study_dt:
            obr.obr_7 = study_dt
        if hl7.accession_field == "OBR-18" and accession:
            obr.obr_18 = _typed("ST", accession, version)
        obr.obr_22 = _hl7_datetime(now)
        obr.obr_24 = "RAD"
        obr.obr_25 = hl7.result_status

        field = "NTE"
        nte = order_group.add_segment("NTE")
        nte.nte_1 = "1"
        nte.nte_2 = "L"
        nte.nte_3 = _typed("FT", NTE_NOTICE, version)

        field = "OBX"
        obx_status = _OBX_STATUS[hl7.result_status]
        text_type = hl7.obx_value_type
        rows: list[tuple[str, str, str]] = [(text_type, FINDINGS_OBX3, codes.DRAFT_NOTICE_ASCII)]
        rows += [(text_type, FINDINGS_OBX3, line) for line in finding_lines]
        rows += [(text_type, IMPRESSION_OBX3, line) for line in impression_lines]
        rows.append(("ST", STUDY_UID_OBX3, study_instance_uid))
        observed = _hl7_datetime(now)
        for set_id, (value_type, identifier, value) in enumerate(rows, start=1):
            obx = order_group.add_group("ORU_R01_OBSERVATION").add_segment("OBX")
            obx.obx_1 = str(set_id)
            obx.obx_2 = value_type
            obx.obx_3 = identifier
            obx.obx_4 = "1"  # one sub-ID per section: its lines belong together (required in v2.3.1)
            obx.obx_5 = _escaped(value_type, value, version)
            obx.obx_11 = obx_status
            obx.obx_14 = observed

        field = "message"
        msg.validate()
        er7 = str(msg.to_er7())
    except HL7apyException as exc:
        # hl7apy's messages quote the offending value, which may be patient data.
        raise ValueError(f"cannot encode the ORU^R01 ({field}): {type(exc).__name__}") from None
    logger.debug("built ORU^R01 v%s control_id=%s with %d OBX", version, control_id, len(rows))
    return er7
