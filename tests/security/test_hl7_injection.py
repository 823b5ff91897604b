"""Data never becomes structure in our HL7: an injection corpus in every ORU field we fill from data.

Each value of :data:`CORPUS` goes into each field of :data:`TARGETS` (DICOM header values, RIS
order fields, model text, config).  Every ORU built must parse back (python-hl7) to exactly the
intended segments, with the value where it was meant (as the HL7 2.7 rules write it: separators
escaped, control characters hex-escaped or, in report text, dropped), and arrive over MLLP at
python-hl7's server as one message with every segment.  An identifier too long for its field is
refused, never cut.  The expected values are worked out here from the rules, not by the builder.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hl7
import pydicom
import pytest
from pydantic import ValidationError
from pydicom.dataelem import DataElement
from pydicom.valuerep import PersonName

from radassist.config import Hl7Settings, Settings
from radassist.errors import PermanentFailure
from radassist.hl7.mllp import send_mllp
from radassist.hl7.oru import NTE_NOTICE, build_oru
from radassist.identifiers import accession_hash
from radassist.ris.context import OrderContext, order_context
from tests.dicom_factories import make_ct_study
from tests.hl7.test_inbound import RunningListener
from tests.peers import mllp_ris

NOW = dt.datetime(2024, 5, 1, 12, 30, 15, tzinfo=dt.UTC)
FINDINGS, IMPRESSION = "Findings line.", "Impression line."

CORPUS: dict[str, str] = {
    "cr": "A\rB",
    "lf": "A\nB",
    "crlf": "A\r\nB",
    "vt": "A\x0bB",
    "fs": "A\x1cB",
    "fs_cr": "A\x1c\rB",
    "segment_forgery": "X\rOBX|99|TX|59776-5^Findings^LN|1|FORGED||||||F\rNTE|9|L|x",
    "mllp_frame_forgery": "A\x1c\r\x0bMSH|^~\\&|EVIL|",
    "delimiters": "A|B^C~D&E",
    "escape_character": "A\\B",
    "escaped_cr_text": "A\\X0D\\B",
    "escape_lookalikes": "\\F\\S\\.br\\E\\",
    "nul": "A\x00B",
    "del": "A\x7fB",
    "all_c0": "".join(map(chr, range(1, 0x20))) + "Z",
    "c1": "A\x80\x85\x9fB",
    "non_ascii": "Zo\u00eb \u00dcnal \u2014 \u6771\u4eac \U0001fa7b \u2028 end",
    "long": "L" * 5000,
    "long_delimiters": "|^" * 300,
    "multi_valued": "FIRST\\SECOND\\THIRD",
}

_DELIMITERS = "|^~\\&"


def _c0(char: str) -> bool:
    return ord(char) < 0x20 or ord(char) == 0x7F


def _c1(char: str) -> bool:
    return 0x80 <= ord(char) <= 0x9F


def written_length(value: str) -> int:
    """HL7 2.7 as the spec states it: a separator is 3 characters written, a C0/DEL 5 (\\Xhh\\)."""
    return sum(3 if c in _DELIMITERS else 5 if _c0(c) else 1 for c in value)


def without_c1(value: str) -> str:
    return "".join(c for c in value if not _c1(c))


def text_lines(text: str) -> list[str]:
    """Report text per the rules: lines at every line boundary, controls dropped, blanks collapsed."""
    out = []
    for line in text.splitlines():
        kept = "".join(c for c in line if c == "\t" or not (_c0(c) or _c1(c)))
        if " ".join(kept.split()):
            out.append(" ".join(kept.split()))
    return out


@dataclass(frozen=True)
class Target:
    """A field we fill from data: how the value goes in, where it is read back, and its rule."""

    name: str
    put: Callable[[pydicom.Dataset, dict[str, Any], str], None]
    read: Callable[[hl7.Message], str]
    rule: str  # identifier | order_identifier | cut | joined | code | name | text | config
    limit: int = 199


def _element(keyword: str, vr: str) -> Callable[[pydicom.Dataset, dict[str, Any], str], None]:
    def put(ds: pydicom.Dataset, _kwargs: dict[str, Any], value: str) -> None:
        tag = pydicom.datadict.tag_for_keyword(keyword)
        ds.add(DataElement(tag, vr, value, validation_mode=pydicom.config.IGNORE))

    return put


def _code(field: str) -> Callable[[pydicom.Dataset, dict[str, Any], str], None]:
    def put(ds: pydicom.Dataset, _kwargs: dict[str, Any], value: str) -> None:
        item = pydicom.Dataset()
        item.CodeValue, item.CodeMeaning, item.CodingSchemeDesignator = "RPC1", "Chest CT", "L"
        item.add(
            DataElement(
                pydicom.datadict.tag_for_keyword(field), "LO", value, validation_mode=pydicom.config.IGNORE
            )
        )
        ds.RequestedProcedureCodeSequence = [item]

    return put


def _order(attribute: str) -> Callable[[pydicom.Dataset, dict[str, Any], str], None]:
    def put(_ds: pydicom.Dataset, kwargs: dict[str, Any], value: str) -> None:
        fields = {"placer_order_number": "PLC-1", "procedure_code": "RPC", "procedure_text": "CT chest"}
        fields[attribute] = value
        kwargs["order"] = OrderContext(accession_number_hash="0123456789abcdef", **fields)

    return put


def _text(keyword: str) -> Callable[[pydicom.Dataset, dict[str, Any], str], None]:
    def put(_ds: pydicom.Dataset, kwargs: dict[str, Any], value: str) -> None:
        kwargs[keyword] = f"Start {value} end."

    return put


def _config(_ds: pydicom.Dataset, kwargs: dict[str, Any], value: str) -> None:
    kwargs["hl7"] = Hl7Settings(sending_facility=value)


def _accession_in_obr_18(ds: pydicom.Dataset, kwargs: dict[str, Any], value: str) -> None:
    _element("AccessionNumber", "SH")(ds, kwargs, value)
    kwargs["hl7"] = Hl7Settings(accession_field="OBR-18")


def _given_name(ds: pydicom.Dataset, kwargs: dict[str, Any], value: str) -> None:
    _element("PatientName", "PN")(ds, kwargs, "FAMILY^" + value)


def _at(segment: str, number: int, component: int = 1) -> Callable[[hl7.Message], str]:
    def read(msg: hl7.Message) -> str:
        return str(msg.extract_field(segment, 1, number, 1, component, 1))

    return read


def _none(_msg: hl7.Message) -> str:
    return ""


TARGETS: tuple[Target, ...] = (
    Target("PID-3.1 <- PatientID", _element("PatientID", "LO"), _at("PID", 3), "identifier"),
    Target(
        "PID-3.4 <- IssuerOfPatientID",
        _element("IssuerOfPatientID", "LO"),
        _at("PID", 3, 4),
        "identifier",
        20,
    ),
    Target("OBR-3.1 <- AccessionNumber", _element("AccessionNumber", "SH"), _at("OBR", 3), "identifier"),
    Target("PID-5.1 <- PatientName", _element("PatientName", "PN"), _at("PID", 5), "name"),
    Target("OBR-4.2 <- StudyDescription", _element("StudyDescription", "LO"), _at("OBR", 4, 2), "joined"),
    Target("OBR-4.1 <- CodeValue", _code("CodeValue"), _at("OBR", 4, 1), "code", 20),
    Target("OBR-4.2 <- CodeMeaning", _code("CodeMeaning"), _at("OBR", 4, 2), "joined"),
    Target(
        "ORC-2.1 <- order placer number", _order("placer_order_number"), _at("ORC", 2), "order_identifier"
    ),
    Target(
        "OBR-2.2 <- order placer namespace",
        _order("placer_namespace"),
        _at("OBR", 2, 2),
        "order_identifier",
        20,
    ),
    Target("OBR-4.2 <- order procedure text", _order("procedure_text"), _at("OBR", 4, 2), "cut"),
    Target("OBX-5 <- findings (TX)", _text("findings"), _none, "text"),
    Target("OBX-5 <- impression (TX)", _text("impression"), _none, "text"),
    Target("MSH-4 <- [hl7] sending_facility", _config, _at("MSH", 4), "config", 20),
    Target("OBR-18 <- AccessionNumber", _accession_in_obr_18, _at("OBR", 18), "identifier"),
    Target("OBR-4.3 <- CodingSchemeDesignator", _code("CodingSchemeDesignator"), _at("OBR", 4, 3), "code", 20),
    Target("ORC-3.1 <- order filler number", _order("filler_order_number"), _at("ORC", 3), "order_identifier"),
    Target("OBR-4.1 <- order procedure code", _order("procedure_code"), _at("OBR", 4, 1), "order_code", 20),
    Target("PID-5.2 <- PatientName given name", _given_name, _at("PID", 5, 2), "given_name"),
    Target("PID-7 <- PatientBirthDate", _element("PatientBirthDate", "DA"), _at("PID", 7), "date"),
    Target("PID-8 <- PatientSex", _element("PatientSex", "CS"), _at("PID", 8), "sex"),
    Target("OBR-7 <- StudyTime", _element("StudyTime", "TM"), _at("OBR", 7), "time"),
)


def expected(target: Target, value: str) -> str | None:
    """The value python-hl7 must read back (None: the builder must refuse it as too long)."""
    if target.rule in ("identifier", "order_identifier"):
        kept = without_c1(value.strip() if target.rule == "identifier" else value)
        return kept if written_length(kept) <= target.limit else None
    if target.rule == "given_name":  # the first value of the PN: FAMILY^<value up to a backslash>
        name = PersonName(("FAMILY^" + value).split("\\")[0], validation_mode=pydicom.config.IGNORE)
        return without_c1(str(name.given_name).strip())
    if target.rule == "order_code":
        return without_c1(value) if written_length(without_c1(value)) <= target.limit else ""
    if target.rule == "date":  # only 8 digits are a date
        return value.strip() if re.fullmatch(r"\d{8}", value.strip()) else ""
    if target.rule == "sex":
        return value.strip().upper() if value.strip().upper() in ("M", "F", "O") else "U"
    if target.rule == "time":  # no time the rules can read: the study date alone
        return "20240314"
    if target.rule == "name":  # the first value of the PN that holds any name part
        for part in value.split("\\"):
            name = PersonName(part, validation_mode=pydicom.config.IGNORE)
            parts = (name.family_name, name.given_name, name.middle_name, name.name_suffix, name.name_prefix)
            if any(str(p).strip() for p in parts):
                return without_c1(str(name.family_name).strip())
        return ""
    if target.rule in ("joined", "code"):
        kept = without_c1(" / ".join(p.strip() for p in value.split("\\") if p.strip()))
        if target.rule == "code":
            return kept if written_length(kept) <= target.limit else ""
        return kept
    return without_c1(value)  # cut, config


def check_structure(msg: hl7.Message, control_id: str, uid: str) -> None:
    """Exactly the intended segments: MSH PID ORC OBR NTE, then OBX findings..., impressions..., UID."""
    names = [str(s[0]) for s in msg]
    assert names[:5] == ["MSH", "PID", "ORC", "OBR", "NTE"] and set(names[5:]) == {"OBX"}, names
    assert str(msg.segment("MSH")[10]) == control_id
    assert str(msg.segment("NTE")[3]) == NTE_NOTICE
    obx = list(msg.segments("OBX"))
    assert [str(s[1]) for s in obx] == [str(i) for i in range(1, len(obx) + 1)]
    codes = [str(s[3][0][0]) for s in obx]
    findings = codes.count("59776-5")
    assert codes == ["59776-5"] * findings + ["19005-8"] * (len(codes) - findings - 1) + ["110180"]
    assert str(obx[-1][5]) == uid and all(str(s[11]) == "R" for s in obx)


def _section(msg: hl7.Message, code: str) -> str:
    values = [msg.unescape(str(s[5])) for s in msg.segments("OBX") if str(s[3][0][0]) == code]
    return "".join(values[1:] if code == "59776-5" else values)


def _build(target: Target, value: str, control_id: str) -> tuple[str | None, dict[str, Any]]:
    source = make_ct_study(series_count=1, instances_per_series=1)[0]
    kwargs: dict[str, Any] = {"findings": FINDINGS, "impression": IMPRESSION, "hl7": Hl7Settings()}
    target.put(source, kwargs, value)
    er7 = build_oru(
        source,
        control_id=control_id,
        study_instance_uid=str(source.StudyInstanceUID),
        now=NOW,
        **kwargs,
    )
    return er7, {"uid": str(source.StudyInstanceUID), **kwargs}


def _check_value(target: Target, value: str, msg: hl7.Message, built: dict[str, Any]) -> None:
    if target.rule == "text":
        code = "59776-5" if "findings" in target.name else "19005-8"
        got = _section(msg, code).replace(" ", "").replace("\r", "")
        want = "".join(text_lines(built["findings" if code == "59776-5" else "impression"])).replace(" ", "")
        assert got == want
        return
    got, want = target.read(msg), expected(target, value)
    assert want is not None
    if written_length(want) <= target.limit:
        assert got == want
    else:  # cut: a prefix, never half an escape sequence, never structure
        assert got and want.startswith(got) and written_length(got) <= target.limit


def test_every_field_from_data_reads_back_exactly(capsys: pytest.CaptureFixture[str]) -> None:
    built: list[tuple[str, str]] = []
    refused = 0
    problems: list[str] = []
    for t_index, target in enumerate(TARGETS):
        for v_index, (label, value) in enumerate(CORPUS.items()):
            control_id = f"INJ{t_index:02d}{v_index:02d}"
            where = f"{target.name} / {label}"
            try:
                er7, kwargs = _build(target, value, control_id)
            except PermanentFailure as exc:
                if target.rule in ("identifier", "order_identifier") and expected(target, value) is None:
                    assert exc.code == "hl7.value_too_long" and re.search(r"\b[A-Z]{3}-\d", str(exc))
                    refused += 1
                    continue
                problems.append(f"{where}: refused {exc.code}")
                continue
            except ValidationError:
                if target.rule == "config" and (
                    written_length(value) > target.limit or any(_c0(c) or _c1(c) for c in value)
                ):
                    refused += 1
                    continue
                raise
            assert er7 is not None
            try:
                msg = hl7.parse(er7)
                check_structure(msg, control_id, kwargs["uid"])
                _check_value(target, value, msg, kwargs)
                assert not any(ord(c) < 0x20 and c != "\r" for c in er7)
            except AssertionError as exc:
                problems.append(f"{where}: {exc}"[:300])
                continue
            built.append((control_id, er7))
    assert problems == [], "\n".join(problems)

    with mllp_ris() as ris:
        for control_id, er7 in built:
            send_mllp("127.0.0.1", ris.port, er7, control_id=control_id, timeout_s=10)
    assert len(ris.messages) == len(built)
    for (control_id, er7), received in zip(built, ris.messages, strict=True):
        sent, got = hl7.parse(er7), hl7.parse(received)
        assert [str(s[0]) for s in got] == [str(s[0]) for s in sent]
        assert str(got.segment("MSH")[10]) == control_id
        assert str(got) == str(sent)
    with capsys.disabled():
        print(
            f"\nHL7 injection: {len(TARGETS)} fields x {len(CORPUS)} values: {len(built)} ORUs parsed back "
            f"exactly and received whole over MLLP, {refused} refused (too long for an identifier or setting)"
        )


@pytest.mark.parametrize("value_type", ["TX", "FT"])
@pytest.mark.parametrize("version", ["2.5.1", "2.3.1"])
def test_report_text_line_breaks_follow_the_value_type(value_type: str, version: str) -> None:
    source = make_ct_study(series_count=1, instances_per_series=1)[0]
    text = "One | two\rThree\r\nFour\x0bFive\x1cSix\x1c\rSeven\x00\x07 eight"
    er7 = build_oru(
        source,
        findings=text,
        impression="Done.",
        control_id="LB1",
        study_instance_uid=str(source.StudyInstanceUID),
        hl7=Hl7Settings(obx_value_type=value_type, version=version),  # type: ignore[arg-type]
        now=NOW,
    )
    msg = hl7.parse(er7)
    check_structure(msg, "LB1", str(source.StudyInstanceUID))
    lines = ["One | two", "Three", "Four", "Five", "Six", "Seven eight"]
    findings = [msg.unescape(str(s[5])) for s in msg.segments("OBX") if str(s[3][0][0]) == "59776-5"][1:]
    if value_type == "TX":
        assert findings == lines  # one OBX per line
    else:
        assert findings == ["\r".join(lines)]  # one OBX, lines joined by \.br\
        assert "Five\\.br\\Six" in er7


def test_the_builder_refuses_what_does_not_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is in the product: with escaping broken, a CR in the patient ID is caught."""
    source = make_ct_study(series_count=1, instances_per_series=1)[0]
    source.PatientID = "PID\rOBX|1|TX|||FORGED"
    monkeypatch.setattr("radassist.hl7.er7.escape", lambda value, *args, **kwargs: value)
    with pytest.raises(PermanentFailure) as excinfo:
        build_oru(
            source,
            findings=FINDINGS,
            impression=IMPRESSION,
            control_id="MM1",
            study_instance_uid=str(source.StudyInstanceUID),
            hl7=Hl7Settings(),
            now=NOW,
        )
    assert excinfo.value.code == "hl7.build.mismatch"
    assert "neither stored nor sent" in str(excinfo.value) and "FORGED" not in str(excinfo.value)


def test_a_message_with_block_characters_is_never_framed() -> None:
    forged = "MSH|^~\\&|A|B|C|D|20240501||ORU^R01^ORU_R01|FR1|P|2.5.1\rPID|1||X\x1c\rOBX|1|TX|||FORGED\r"
    with mllp_ris() as ris, pytest.raises(PermanentFailure) as excinfo:
        send_mllp("127.0.0.1", ris.port, forged, control_id="FR1", timeout_s=5)
    assert excinfo.value.code == "hl7.frame.unsafe"
    assert ris.messages == []


def test_an_escaped_sequence_from_the_ris_stays_escaped_in_our_oru(migrated_settings: Settings) -> None:
    """``\\X0D\\`` in the order's OBR-4 is read as a CR, kept, and written back as ``\\X0D\\``."""
    orm = (
        "\r".join(
            [
                "MSH|^~\\&|RIS|HOSP|RADASSIST|RAD|20240501101500||ORM^O01^ORM_O01|ESC1|P|2.5.1",
                "PID|1||PID-ESC^^^HOSP^MR||ESCAPE^TEST",
                "ORC|NW|PLC\\X0D\\OBX\\F\\9^HIS|FIL-ESC^RIS||SC",
                "OBR|1|PLC\\X0D\\OBX\\F\\9^HIS|FIL-ESC^RIS|RPC^CT\\X0D\\OBX\\F\\1\\F\\TX\\.br\\chest^L||||||||||||||ACC-ESC",
            ]
        )
        + "\r"
    )
    with RunningListener(migrated_settings, Hl7Settings(accession_field="OBR-18")) as listener:
        ack = listener.send(orm)
        assert str(ack.segment("MSA")[1]) == "AA"
        with listener.sessions() as session:
            order = order_context(session, accession_hash("ACC-ESC"))
    assert order is not None
    assert order.procedure_text == "CT\rOBX|1|TX\nchest" and order.placer_order_number == "PLC\rOBX|9"
    source = make_ct_study(series_count=1, instances_per_series=1, accession_number="ACC-ESC")[0]
    er7 = build_oru(
        source,
        findings=FINDINGS,
        impression=IMPRESSION,
        control_id="ESC1",
        study_instance_uid=str(source.StudyInstanceUID),
        hl7=Hl7Settings(),
        now=NOW,
        order=order,
    )
    obr = er7.split("\r")[3]
    assert obr.startswith(
        "OBR|1|PLC\\X0D\\OBX\\F\\9^HIS|FIL-ESC^RIS|RPC^CT\\X0D\\OBX\\F\\1\\F\\TX\\X0A\\chest^L|"
    )
    msg = hl7.parse(er7)
    check_structure(msg, "ESC1", str(source.StudyInstanceUID))
    assert msg.unescape(str(msg.segment("OBR")[4][0][1])) == "CT\rOBX|1|TX\nchest"
