"""The segments and fields of our ORU^R01: what each holds, where its value comes from, and what
happens when a value is longer than HL7 allows.

The builder writes a field only through :class:`SegmentWriter`, which looks the position up in
:data:`ORU_FIELDS`; a position missing from the table cannot be written.  The interface
specification (:mod:`radassist.specs.hl7_interface`) renders the same tables, so it lists exactly
what is sent.  Lengths are counted on the escaped text and follow hl7apy's STRICT limits, which
the finished message is validated against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from radassist.errors import PermanentFailure
from radassist.hl7.er7 import Segment
from radassist.hl7.escaping import cut, escaped_length, writable

Fit = Literal["fixed", "refuse", "cut", "omit", "wrap"]

FIT_MEANING: dict[Fit, str] = {
    "fixed": "our own constant or a value we format; always fits",
    "refuse": "the ORU^R01 is not built (`hl7.value_too_long`): an identifier is never cut",
    "cut": "cut to the limit (whole characters, never half an escape sequence)",
    "omit": "left empty (a code that does not fit is not guessed at)",
    "wrap": "continued in the next OBX of the same section",
}

#: Longest escaped value per data type (hl7apy STRICT; OBX-5 is checked as ST whatever OBX-2 says).
MAX_LENGTH: dict[str, int] = {
    "ST": 199,
    "IS": 20,
    "ID": 20,
    "SI": 4,
    "DT": 8,
    "DTM": 24,
    "FT": 65536,
    "TX": 65536,
}
OBX_TEXT_MAX = 199
"""OBX-5 limit: strict parsers (hl7apy) read the "varies" type of OBX-5 as ST."""


@dataclass(frozen=True)
class SegmentSpec:
    name: str
    repeats: str
    meaning: str


@dataclass(frozen=True)
class FieldSpec:
    """One field (or component) we write."""

    position: str
    name: str
    datatype: str
    source: str
    fit: Fit = "fixed"

    @property
    def limit(self) -> int:
        return OBX_TEXT_MAX if self.position == "OBX-5" else MAX_LENGTH[self.datatype]

    @property
    def address(self) -> tuple[str, int, int]:
        """(segment, field, component) of :attr:`position`, e.g. ``PID-3.4`` -> ("PID", 3, 4)."""
        segment, _, rest = self.position.partition("-")
        number, _, component = rest.partition(".")
        return segment, int(number), int(component or 1)


ORU_SEGMENTS: tuple[SegmentSpec, ...] = (
    SegmentSpec("MSH", "1", "Message header"),
    SegmentSpec("PID", "1", "Patient identification, from the study's DICOM header"),
    SegmentSpec("PV1", "not sent", "Patient visit: optional in ORU^R01; RadAssist knows no visit"),
    SegmentSpec("ORC", "1", "Common order: the RIS's own order numbers"),
    SegmentSpec("OBR", "1", "Observation request: the imaging procedure and the result status"),
    SegmentSpec("NTE", "1..n", "Notice that the text is an AI-generated draft, not verified; then one NTE per "
                "warning of an automated check (`[safety]` policy `annotate`, or `hold` once released)"),
    SegmentSpec(
        "OBX",
        "2..n",
        "The draft notice, the comparison lines (when priors were searched), the Findings lines, the Impression "
        "lines, then the Study Instance UID",
    ),
)

_DICOM_ID = "; a backslash in the value is kept (written as `\\E\\`), never split"
_ORDER_NUMBER = "the RIS order's number when its order was received, else DICOM AccessionNumber (0008,0050)"

ORU_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("MSH-3", "Sending application (HD.1)", "IS", "`[hl7] sending_application`", "refuse"),
    FieldSpec("MSH-4", "Sending facility (HD.1)", "IS", "`[hl7] sending_facility`", "refuse"),
    FieldSpec("MSH-5", "Receiving application (HD.1)", "IS", "`[hl7] receiving_application`", "refuse"),
    FieldSpec("MSH-6", "Receiving facility (HD.1)", "IS", "`[hl7] receiving_facility`", "refuse"),
    FieldSpec("MSH-7", "Date/time of message", "DTM", "when the outputs were built, in the study's time zone (its TimezoneOffsetFromUTC, else the server's), with the offset"),
    FieldSpec("MSH-9.1", "Message code", "ID", "`ORU`"),
    FieldSpec("MSH-9.2", "Trigger event", "ID", "`R01`"),
    FieldSpec("MSH-9.3", "Message structure", "ID", "`ORU_R01` (not in v2.3.1)"),
    FieldSpec("MSH-10", "Message control ID", "ST", "fixed per job, the same on every retry"),
    FieldSpec("MSH-11", "Processing ID", "ID", "`P`"),
    FieldSpec("MSH-12", "Version ID", "ID", "`[hl7] version`: `2.5.1` or `2.3.1`"),
    FieldSpec("MSH-18", "Character set", "ID", "`UNICODE UTF-8` (v2.3.1: `UNICODE`); the bytes are UTF-8"),
    FieldSpec("PID-1", "Set ID", "SI", "`1`"),
    FieldSpec(
        "PID-3.1", "Patient identifier (CX.1)", "ST", "DICOM PatientID (0010,0020)" + _DICOM_ID, "refuse"
    ),
    FieldSpec(
        "PID-3.4",
        "Assigning authority (CX.4, HD.1)",
        "IS",
        "DICOM IssuerOfPatientID (0010,0021), when present" + _DICOM_ID,
        "refuse",
    ),
    FieldSpec("PID-3.5", "Identifier type code (CX.5)", "ID", "`MR`"),
    FieldSpec(
        "PID-5.1",
        "Family name (XPN.1)",
        "ST",
        "DICOM PatientName (0010,0010); a name with several values gives one PID-5 repetition each",
        "cut",
    ),
    FieldSpec("PID-5.2", "Given name (XPN.2)", "ST", "PatientName, given name", "cut"),
    FieldSpec("PID-5.3", "Middle name (XPN.3)", "ST", "PatientName, middle name", "cut"),
    FieldSpec("PID-5.4", "Suffix (XPN.4)", "ST", "PatientName, suffix", "cut"),
    FieldSpec("PID-5.5", "Prefix (XPN.5)", "ST", "PatientName, prefix", "cut"),
    FieldSpec("PID-7", "Date of birth", "DT", "DICOM PatientBirthDate (0010,0030), when it is 8 digits"),
    FieldSpec("PID-8", "Administrative sex", "IS", "DICOM PatientSex (0010,0040): M, F, O, else `U`"),
    FieldSpec("ORC-1", "Order control", "ID", "`RE` (observations to follow)"),
    FieldSpec("ORC-2.1", "Placer order number (EI.1)", "ST", _ORDER_NUMBER, "refuse"),
    FieldSpec(
        "ORC-2.2", "Placer namespace (EI.2)", "IS", "the RIS order's placer namespace, when known", "refuse"
    ),
    FieldSpec("ORC-3.1", "Filler order number (EI.1)", "ST", _ORDER_NUMBER, "refuse"),
    FieldSpec(
        "ORC-3.2", "Filler namespace (EI.2)", "IS", "the RIS order's filler namespace, when known", "refuse"
    ),
    FieldSpec("ORC-5", "Order status", "ID", "`CM` (completed)"),
    FieldSpec("OBR-1", "Set ID", "SI", "`1`"),
    FieldSpec("OBR-2.1", "Placer order number (EI.1)", "ST", "as ORC-2.1", "refuse"),
    FieldSpec("OBR-2.2", "Placer namespace (EI.2)", "IS", "as ORC-2.2", "refuse"),
    FieldSpec("OBR-3.1", "Filler order number (EI.1)", "ST", "as ORC-3.1", "refuse"),
    FieldSpec("OBR-3.2", "Filler namespace (EI.2)", "IS", "as ORC-3.2", "refuse"),
    FieldSpec(
        "OBR-4.1",
        "Universal service identifier (CE.1)",
        "ID",
        "the RIS order's procedure code, else CodeValue of DICOM RequestedProcedureCodeSequence "
        "or ProcedureCodeSequence",
        "omit",
    ),
    FieldSpec(
        "OBR-4.2",
        "Procedure text (CE.2)",
        "ST",
        "the RIS order's procedure text, else the code's CodeMeaning, else DICOM StudyDescription, "
        "else RequestedProcedureDescription, else `<modality> imaging study`; several values are "
        "joined with ` / `",
        "cut",
    ),
    FieldSpec("OBR-4.3", "Coding system (CE.3)", "ID", "the coding system of OBR-4.1, only with it", "omit"),
    FieldSpec("OBR-7", "Observation date/time", "DTM",
              "DICOM StudyDate + StudyTime, when readable, with TimezoneOffsetFromUTC when the study declares one"),
    FieldSpec(
        "OBR-18",
        "Placer field 1",
        "ST",
        'DICOM AccessionNumber, only with `[hl7] accession_field = "OBR-18"`' + _DICOM_ID,
        "refuse",
    ),
    FieldSpec("OBR-22", "Results report/status change", "DTM", "when the outputs were built, in the study's time zone (its TimezoneOffsetFromUTC, else the server's), with the offset"),
    FieldSpec("OBR-24", "Diagnostic service section", "ID", "`RAD`"),
    FieldSpec(
        "OBR-25",
        "Result status",
        "ID",
        "`[hl7] result_status`: `R` (results stored, not verified; the default) or `P`, `I`, `S`, `A`; "
        "never `F` or `C`",
    ),
    FieldSpec("NTE-1", "Set ID", "SI", "`1` for the notice, then 2, 3, ... for the warnings"),
    FieldSpec("NTE-2", "Source of comment", "ID", "`L` (ancillary, the filler)"),
    FieldSpec("NTE-3", "Comment", "FT", "the draft notice (constant text), or one automated check's warning "
              "(our own words: the check, what it found in our vocabulary, the header codes)", "cut"),
    FieldSpec("OBX-1", "Set ID", "SI", "1, 2, 3, ... in message order"),
    FieldSpec(
        "OBX-2", "Value type", "ID", "`[hl7] obx_value_type` (`TX` or `FT`) for text, `ST` for the UID"
    ),
    FieldSpec(
        "OBX-3.1",
        "Observation identifier (CE.1)",
        "ST",
        "`59776-5` (notice and Findings), `55114-3` (comparison with the priors), `19005-8` (Impression), "
        "`110180` (Study Instance UID)",
    ),
    FieldSpec(
        "OBX-3.2", "Observation text (CE.2)", "ST",
        "`Findings`, `Prior Procedure Descriptions`, `Impressions`, `Study Instance UID`",
    ),
    FieldSpec("OBX-3.3", "Coding system (CE.3)", "ID", "`LN` (LOINC), `DCM` (DICOM)"),
    FieldSpec("OBX-4", "Observation sub-ID", "ST", "`1`: the lines of one section belong together"),
    FieldSpec(
        "OBX-5",
        "Observation value",
        "TX",
        "the draft notice; then, when the job's priors were searched, one line per prior compared with "
        "(`Comparison: <description> (<modality>) of <date>.`) or `Comparison: none available.` and why; "
        "then the model's Findings and Impression text. TX: one OBX per line; "
        "FT: lines joined by `\\.br\\`. The Study Instance UID (ST) last",
        "wrap",
    ),
    FieldSpec("OBX-11", "Observation result status", "ID", "from OBR-25: R->R, P->P, I->I, S->I, A->P"),
    FieldSpec("OBX-14", "Date/time of the observation", "DTM", "when the outputs were built, in the study's time zone (its TimezoneOffsetFromUTC, else the server's), with the offset"),
)

FIELDS: dict[str, FieldSpec] = {spec.position: spec for spec in ORU_FIELDS}


def too_long(spec: FieldSpec, limit: int) -> PermanentFailure:
    return PermanentFailure(
        f"{spec.position} ({spec.name}) is longer than HL7 allows ({limit} characters as written), "
        "so the ORU^R01 was not built",
        code="hl7.value_too_long",
    )


def fits(position: str, value: str, *, datatype: str | None = None) -> bool:
    """Whether ``value`` fits ``position`` as written (escaped)."""
    spec = FIELDS[position]
    limit = spec.limit if datatype is None else min(spec.limit, MAX_LENGTH[datatype])
    return escaped_length(value, formatted=(datatype or spec.datatype) == "FT") <= limit


class SegmentWriter:
    """Builds one :class:`Segment`, each value put by its table position and fitted by its rule."""

    def __init__(self, name: str) -> None:
        self.segment = Segment(name)

    def put(
        self, position: str, value: str | None, *, repetition: int = 1, datatype: str | None = None
    ) -> None:
        """Write ``value`` (plain text, escaped when rendered) at ``position``; empty writes nothing.

        ``datatype`` overrides the table's for OBX-5, whose type OBX-2 names.
        """
        spec = FIELDS[position]
        segment, number, component = spec.address
        if segment != self.segment.name:
            raise ValueError(f"{position} does not belong to a {self.segment.name} segment")
        value = writable(value or "")
        if not value:
            return
        kind = datatype or spec.datatype
        formatted = kind == "FT"
        limit = min(spec.limit, MAX_LENGTH[kind])
        if escaped_length(value, formatted=formatted) > limit:
            if spec.fit == "cut":
                value = cut(value, limit, formatted=formatted)
            elif spec.fit == "omit":
                return
            else:
                raise too_long(spec, limit)
        self.segment.set(number, component, value, repetition, formatted=formatted)
