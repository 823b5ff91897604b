"""The ORU^R01 (hl7apy, STRICT) and its MLLP delivery to python-hl7's MLLP server as the RIS."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import hl7
import pydicom
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from radassist.config import Hl7Settings
from radassist.errors import PermanentFailure, TransientFailure
from radassist.hl7.ack import AckCode, ErrorCode, build_ack, read_header
from radassist.hl7.escaping import Delimiters, cut, escape, unescape
from radassist.hl7.mllp import client_tls_context, send_mllp
from radassist.hl7.oru import NTE_NOTICE, build_oru
from radassist.hl7.ris_ack import parse_ack
from radassist.ris.context import OrderContext
from tests.conftest import free_port, wait_until
from tests.dicom_factories import (
    SENTINEL_ACCESSION,
    SENTINEL_PATIENT_ID,
    SENTINEL_VALUES,
    make_ct_study,
)
from tests.peers import mllp_ris

NOW = dt.datetime(2024, 5, 1, 12, 30, 15, tzinfo=dt.UTC)
FINDINGS = "Lungs are clear | no effusion ^ & ~ \\ done.\n\nHeart size normal \u2014 d\u00e9j\u00e0 vu."
# tests.peers.mllp_ris decodes ASCII (python-hl7's default), so what it receives stays ASCII.
ASCII_FINDINGS = "Lungs are clear | no effusion ^ & ~ \\ done.\n\nHeart size normal."
IMPRESSION = "No acute disease."
CONTROL_ID = "0123456789abcdef0123"


@pytest.fixture
def source() -> pydicom.Dataset:
    return make_ct_study(series_count=1, instances_per_series=1)[0]


def _oru(source: pydicom.Dataset, **kwargs: object) -> str:
    args: dict[str, object] = {
        "findings": FINDINGS,
        "impression": IMPRESSION,
        "control_id": CONTROL_ID,
        "study_instance_uid": str(source.StudyInstanceUID),
        "hl7": Hl7Settings(host="ris.example", sending_facility="RADDEPT"),
        "now": NOW,
    }
    args.update(kwargs)
    return build_oru(source, **args)  # type: ignore[arg-type]


def _unescape(message: hl7.Message, value: object) -> str:
    return str(message.unescape(str(value)))


def test_oru_validates_strict_and_carries_the_order(source: pydicom.Dataset) -> None:
    er7 = _oru(source)
    assert "\r" in er7 and "\n" not in er7
    parsed = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    parsed.validate()  # raises on any STRICT violation

    msg = hl7.parse(er7)
    msh = msg.segment("MSH")
    assert str(msh[3]) == "RADASSIST" and str(msh[4]) == "RADDEPT"
    assert str(msh[5]) == "RIS" and str(msh[6]) == "HOSPITAL"
    assert str(msh[7]) == "20240501123015+0000"
    assert str(msh[9]) == "ORU^R01^ORU_R01"
    assert str(msh[10]) == CONTROL_ID
    assert str(msh[11]) == "P" and str(msh[12]) == "2.5.1"
    assert str(msh[18]) == "UNICODE UTF-8"

    pid = msg.segment("PID")
    assert str(pid[3][0][0]) == SENTINEL_PATIENT_ID
    assert str(pid[5]) == "SENTINEL^PHI"
    assert str(pid[7]) == "19010203" and str(pid[8]) == "O"

    orc, obr = msg.segment("ORC"), msg.segment("OBR")
    assert str(orc[1]) == "RE"
    assert str(orc[2]) == str(orc[3]) == SENTINEL_ACCESSION
    assert str(obr[2]) == str(obr[3]) == SENTINEL_ACCESSION
    assert str(obr[4][0][1]) == "CT CHEST W/O CONTRAST"
    assert str(obr[7]) == "20240314092653"
    assert str(obr[25]) == "R"
    assert "AI-generated draft" in str(msg.segment("NTE")[3])
    assert str(msg.segment("NTE")[3]) == NTE_NOTICE


def test_obx_lines_are_coded_escaped_and_preliminary(source: pydicom.Dataset) -> None:
    er7 = _oru(source)
    msg = hl7.parse(er7)
    obx = list(msg.segments("OBX"))
    assert [str(s[1]) for s in obx] == [str(i) for i in range(1, len(obx) + 1)]
    rows = [(str(s[2]), str(s[3]), _unescape(msg, s[5]), str(s[11])) for s in obx]
    assert rows[0][:2] == ("TX", "59776-5^Findings^LN")
    assert rows[0][2].startswith("AI-GENERATED DRAFT - NOT VERIFIED")
    assert rows[1] == ("TX", "59776-5^Findings^LN", "Lungs are clear | no effusion ^ & ~ \\ done.", "R")
    assert rows[2] == ("TX", "59776-5^Findings^LN", "Heart size normal \u2014 d\u00e9j\u00e0 vu.", "R")
    assert rows[3] == ("TX", "19005-8^Impressions^LN", IMPRESSION, "R")
    assert rows[4] == ("ST", "110180^Study Instance UID^DCM", str(source.StudyInstanceUID), "R")
    assert len(rows) == 5
    # The special characters arrive escaped, not as separators.
    assert "clear \\F\\ no effusion \\S\\ \\T\\ \\R\\ \\E\\ done" in er7


def test_long_lines_are_wrapped_into_several_obx(source: pydicom.Dataset) -> None:
    long_line = " ".join(f"word{i}" for i in range(120))
    er7 = _oru(source, findings=long_line)
    parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True).validate()
    msg = hl7.parse(er7)
    pieces = [str(s[5]) for s in msg.segments("OBX") if str(s[3]).startswith("59776-5")][1:]
    assert len(pieces) > 1 and all(len(p) <= 199 for p in pieces)
    assert " ".join(pieces) == long_line


def test_preliminary_status_mirrors_obr_25(source: pydicom.Dataset) -> None:
    msg = hl7.parse(_oru(source, hl7=Hl7Settings(result_status="P")))
    assert str(msg.segment("OBR")[25]) == "P"
    assert {str(s[11]) for s in msg.segments("OBX")} == {"P"}


def test_oru_rejects_bad_arguments_without_patient_data(source: pydicom.Dataset) -> None:
    with pytest.raises(ValueError, match='"control_id"'):
        _oru(source, control_id="x" * 21)
    with pytest.raises(ValueError, match='"findings" and "impression"'):
        _oru(source, findings="", impression="  ")
    with pytest.raises(ValueError, match='"study_instance_uid"'):
        _oru(source, study_instance_uid="abc")
    del source.PatientID
    with pytest.raises(PermanentFailure, match="PatientID") as excinfo:
        _oru(source)
    assert excinfo.value.code == "hl7.no_patient_id"
    assert not any(value in str(excinfo.value) for value in SENTINEL_VALUES)


def test_oru_from_rg1(testdata: Path) -> None:
    source = pydicom.dcmread(testdata / "pydicom-data" / "RG1_J2KR.dcm", stop_before_pixels=True)
    er7 = _oru(source, study_instance_uid=str(source.StudyInstanceUID))
    parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True).validate()
    msg = hl7.parse(er7)
    assert str(msg.segment("OBR")[2]) == "exam Number"
    assert str(msg.segment("OBR")[4][0][1]) == "THORAX"


# --- MLLP delivery to the python-hl7 MLLP server ---------------------------------------------


def test_send_returns_the_ack_on_aa(source: pydicom.Dataset, caplog: pytest.LogCaptureFixture) -> None:
    er7 = _oru(source, findings=ASCII_FINDINGS)
    with caplog.at_level(logging.DEBUG), mllp_ris() as ris:
        ack = send_mllp("127.0.0.1", ris.port, er7, control_id=CONTROL_ID, timeout_s=10)
    assert ris.messages and hl7.parse(ris.messages[0]).segment("MSH")[10][0] == CONTROL_ID
    # The RIS got the text intact (UTF-8, escapes preserved).
    received = hl7.parse(ris.messages[0])
    assert (
        _unescape(received, received.segments("OBX")[1][5]) == "Lungs are clear | no effusion ^ & ~ \\ done."
    )
    parsed = hl7.parse(ack)
    assert str(parsed.segment("MSA")[1]) == "AA" and str(parsed.segment("MSA")[2]) == CONTROL_ID
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(value in logged for value in SENTINEL_VALUES)
    assert "Lungs are clear" not in logged


def test_ae_is_transient(source: pydicom.Dataset) -> None:
    with mllp_ris(lambda message, seen: "AE") as ris, pytest.raises(TransientFailure) as excinfo:
        send_mllp(
            "127.0.0.1", ris.port, _oru(source, findings=ASCII_FINDINGS), control_id=CONTROL_ID, timeout_s=10
        )
    assert excinfo.value.code == "hl7.nack.ae"
    assert ris.acks == ["AE"]


def test_ar_is_permanent(source: pydicom.Dataset) -> None:
    with mllp_ris(lambda message, seen: "AR") as ris, pytest.raises(PermanentFailure) as excinfo:
        send_mllp(
            "127.0.0.1", ris.port, _oru(source, findings=ASCII_FINDINGS), control_id=CONTROL_ID, timeout_s=10
        )
    assert excinfo.value.code == "hl7.nack.ar"
    assert not any(value in str(excinfo.value) for value in SENTINEL_VALUES)


def test_a_silent_ris_times_out(source: pydicom.Dataset) -> None:
    with mllp_ris(lambda message, seen: None) as ris:
        with pytest.raises(TransientFailure) as excinfo:
            send_mllp(
                "127.0.0.1",
                ris.port,
                _oru(source, findings=ASCII_FINDINGS),
                control_id=CONTROL_ID,
                timeout_s=0.5,
            )
        wait_until(lambda: ris.messages, timeout=5)  # it did arrive; the RIS just never answered
    assert excinfo.value.code == "hl7.timeout"


def test_an_ack_for_another_message_is_a_mismatch(source: pydicom.Dataset) -> None:
    with mllp_ris() as ris, pytest.raises(TransientFailure) as excinfo:
        send_mllp(
            "127.0.0.1",
            ris.port,
            _oru(source, findings=ASCII_FINDINGS),
            control_id="somethingelse",
            timeout_s=10,
        )
    assert excinfo.value.code == "hl7.ack.mismatch"


def test_nothing_listening_is_transient(source: pydicom.Dataset) -> None:
    with pytest.raises(TransientFailure) as excinfo:
        send_mllp(
            "127.0.0.1",
            free_port(),
            _oru(source, findings=ASCII_FINDINGS),
            control_id=CONTROL_ID,
            timeout_s=2,
        )
    assert excinfo.value.code == "hl7.unreachable"


def test_a_peer_closing_without_ack_is_transient(source: pydicom.Dataset) -> None:
    # A TCP peer that reads and hangs up: what a crashing interface engine looks like.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def accept_and_close() -> None:
            conn, _ = server.accept()
            conn.recv(65536)
            conn.close()

        thread = threading.Thread(target=accept_and_close, daemon=True)
        thread.start()
        with pytest.raises(TransientFailure) as excinfo:
            send_mllp(
                "127.0.0.1",
                server.getsockname()[1],
                _oru(source, findings=ASCII_FINDINGS),
                control_id=CONTROL_ID,
                timeout_s=5,
            )
        thread.join(5)
    assert excinfo.value.code == "hl7.unreachable"


def _ack_with_reason(code: str, reason: str, err: str | None = None) -> str:
    request = hl7.parse(f"MSH|^~\\&|RADASSIST|X|RIS|H|20240501||ORU^R01^ORU_R01|{CONTROL_ID}|P|2.5.1\r")
    ack = request.create_ack(code, message_id="ACK1")
    ack.assign_field(reason, "MSA", 1, 3)
    text = str(ack)
    if err:
        text += f"ERR||||E||||{err}\r"
    return text


def test_parse_ack_reads_the_ris_reason() -> None:
    ack = parse_ack(_ack_with_reason("AR", "Unknown order", err="Order not found \\T\\ closed"))
    assert (ack.code, ack.control_id) == ("AR", CONTROL_ID)
    assert ack.text == "Unknown order; Order not found & closed"
    assert parse_ack(_ack_with_reason("AA", "")).text == ""
    with pytest.raises(ValueError):
        parse_ack("garbage")
    with pytest.raises(ValueError):
        parse_ack("MSH|^~\\&|A|B|C|D|2024||ACK|1|P|2.5.1\r")


# --- versions, order numbers, accession field, OBX type -----------------------------------------

ORDER = OrderContext(
    accession_number_hash="0123456789abcdef",
    placer_order_number="PLACER-77",
    placer_namespace="HIS",
    filler_order_number="FILLER-88",
    filler_namespace="RIS",
    procedure_code="RP-CT-CHEST",
    procedure_text="CT chest without contrast",
    procedure_system="L",
)


def _strict(er7: str) -> None:
    parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True).validate()


@pytest.mark.parametrize("version", ["2.5.1", "2.3.1"])
@pytest.mark.parametrize("value_type", ["TX", "FT"])
def test_both_versions_and_value_types_validate_strict(
    source: pydicom.Dataset, version: str, value_type: str
) -> None:
    er7 = _oru(source, hl7=Hl7Settings(version=version, obx_value_type=value_type))  # type: ignore[arg-type]
    _strict(er7)
    msg = hl7.parse(er7)
    assert str(msg.segment("MSH")[12]) == version
    assert str(msg.segment("MSH")[9]) == ("ORU^R01^ORU_R01" if version == "2.5.1" else "ORU^R01")
    assert str(msg.segment("ORC")[1]) == "RE"
    obx = list(msg.segments("OBX"))
    assert [str(s[2]) for s in obx] == [value_type] * (len(obx) - 1) + ["ST"]
    assert str(obx[-1][5]) == str(source.StudyInstanceUID)
    assert str(msg.segment("NTE")[3]) == NTE_NOTICE


def test_order_numbers_come_from_the_stored_order(source: pydicom.Dataset) -> None:
    for version in ("2.5.1", "2.3.1"):
        er7 = _oru(source, hl7=Hl7Settings(version=version), order=ORDER)  # type: ignore[arg-type]
        _strict(er7)
        msg = hl7.parse(er7)
        orc, obr = msg.segment("ORC"), msg.segment("OBR")
        assert str(orc[2]) == str(obr[2]) == "PLACER-77^HIS"
        assert str(orc[3]) == str(obr[3]) == "FILLER-88^RIS"
        assert str(obr[4]) == "RP-CT-CHEST^CT chest without contrast^L"
        assert str(obr[18]) == ""  # accession in OBR-3 mode: not repeated in OBR-18


def test_accession_in_obr_18(source: pydicom.Dataset) -> None:
    with_order = hl7.parse(_oru(source, hl7=Hl7Settings(accession_field="OBR-18"), order=ORDER))
    assert str(with_order.segment("OBR")[18]) == SENTINEL_ACCESSION
    assert str(with_order.segment("OBR")[3]) == "FILLER-88^RIS"
    without = _oru(source, hl7=Hl7Settings(accession_field="OBR-18", version="2.3.1"))
    _strict(without)
    obr = hl7.parse(without).segment("OBR")
    assert str(obr[18]) == SENTINEL_ACCESSION and str(obr[3]) == SENTINEL_ACCESSION


def test_order_without_numbers_falls_back_to_the_accession(source: pydicom.Dataset) -> None:
    partial = OrderContext(accession_number_hash="0123456789abcdef", placer_order_number="ONLY-PLACER")
    obr = hl7.parse(_oru(source, order=partial)).segment("OBR")
    assert str(obr[2]) == "ONLY-PLACER" and str(obr[3]) == SENTINEL_ACCESSION
    assert str(obr[4][0][1]) == "CT CHEST W/O CONTRAST"  # no ordered procedure: the study's own


def test_unsupported_version_is_refused(source: pydicom.Dataset) -> None:
    with pytest.raises(ValueError, match='"version"'):
        _oru(source, version="2.4")


# --- the RIS over MLLP: retries, outages, TLS ----------------------------------------------------


def test_ae_then_aa_on_the_retry(source: pydicom.Dataset) -> None:
    er7 = _oru(source, findings=ASCII_FINDINGS)
    with mllp_ris(lambda message, seen: "AE" if seen == 1 else "AA") as ris:
        with pytest.raises(TransientFailure) as excinfo:
            send_mllp("127.0.0.1", ris.port, er7, control_id=CONTROL_ID, timeout_s=10)
        assert excinfo.value.code == "hl7.nack.ae"
        ack = send_mllp("127.0.0.1", ris.port, er7, control_id=CONTROL_ID, timeout_s=10)
    assert str(hl7.parse(ack).segment("MSA")[1]) == "AA"
    assert ris.acks == ["AE", "AA"]
    # The retry is the very same message: same MSH-10, same bytes.
    assert ris.messages[0] == ris.messages[1]


def test_ris_down_then_up(source: pydicom.Dataset) -> None:
    er7 = _oru(source, findings=ASCII_FINDINGS)
    port = free_port()
    with pytest.raises(TransientFailure) as excinfo:
        send_mllp("127.0.0.1", port, er7, control_id=CONTROL_ID, timeout_s=2)
    assert excinfo.value.code == "hl7.unreachable"
    with mllp_ris(port=port) as ris:
        ack = send_mllp("127.0.0.1", port, er7, control_id=CONTROL_ID, timeout_s=10)
    assert parse_ack(ack).code == "AA" and parse_ack(ack).control_id == CONTROL_ID
    assert len(ris.messages) == 1


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made by openssl, the tool a hospital's admin would use."""
    cert, key = folder / "ris.pem", folder / "ris.key"
    subprocess.run(
        [
            "/usr/bin/openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_tls_to_a_tls_ris(source: pydicom.Dataset, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    er7 = _oru(source, findings=ASCII_FINDINGS)
    trusted = client_tls_context(Hl7Settings(host="127.0.0.1", tls=True, tls_ca_file=str(cert)))
    assert trusted is not None
    with mllp_ris(ssl=server) as ris:
        ack = send_mllp("127.0.0.1", ris.port, er7, control_id=CONTROL_ID, timeout_s=10, ssl_context=trusted)
        assert parse_ack(ack).code == "AA"
        # A client that does not trust the RIS's certificate never sends the message.
        untrusted = client_tls_context(Hl7Settings(host="127.0.0.1", tls=True))
        assert untrusted is not None
        with pytest.raises(TransientFailure) as excinfo:
            send_mllp("127.0.0.1", ris.port, er7, control_id=CONTROL_ID, timeout_s=10, ssl_context=untrusted)
        assert excinfo.value.code == "hl7.tls"
        # And a plain-MLLP client gets no ACK from a TLS RIS.
        with pytest.raises(TransientFailure):
            send_mllp("127.0.0.1", ris.port, er7, control_id=CONTROL_ID, timeout_s=2)
    assert len(ris.messages) == 1
    assert client_tls_context(Hl7Settings()) is None


# --- escaping (HL7 2.7), multi-valued DICOM values, lengths ------------------------------------

ROUND_TRIP = ["plain", "A|B^C~D\\E&F", "\\F\\ looks escaped", "CR\rLF\nCRLF\r\nVT\x0bFS\x1cNUL\x00DEL\x7f",
              "Zo\u00eb \u6771\u4eac \U0001fa7b", ""]


@pytest.mark.parametrize("value", ROUND_TRIP)
def test_escape_round_trips_and_leaves_no_control_character(value: str) -> None:
    written = escape(value)
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in written)
    assert not set(written) & {"|", "^", "~", "&"}
    assert unescape(written) == value
    assert unescape(escape(value, formatted=True)) == value.replace("\r\n", "\n").replace("\r", "\n")


def test_c1_is_dropped_and_cut_never_halves_a_sequence() -> None:
    assert escape("A\x85\x9bB") == "AB"
    value = "ab|" * 10
    for limit in range(0, 40):
        kept = cut(value, limit)
        assert len(escape(kept)) <= limit and value.startswith(kept)
        assert unescape(escape(kept)) == kept


def test_unescape_reads_hex_as_utf8_and_drops_what_is_not_text(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        assert unescape("caf\\XC3A9\\ \\X0D\\") == "caf\u00e9 \r"
        assert unescape("\\H\\bold\\N\\ \\Zlocal\\ \\C2842\\x \\.sp2\\y") == "bold  x \ny"
        assert unescape("open \\escape") == "open \\escape"
        assert unescape("a#F#b", Delimiters(escape="#")) == "a|b"
    assert caplog.records == []  # nothing of the value is ever logged


def test_our_ack_hex_escapes_control_characters_it_echoes() -> None:
    header = read_header("MSH|^~\\&|RIS\x0bX|HOSP|RA|RD|20240501||ORM^O01|C\x1cID\x0b|P|2.5.1\rPID|1\r")
    assert header is not None
    ack = build_ack(header, AckCode.AE, error=ErrorCode.DATA_TYPE, text="bad\rvalue | here")
    assert [s[:3] for s in ack.split("\r") if s] == ["MSH", "MSA", "ERR"]
    assert not any(ord(c) < 0x20 and c != "\r" for c in ack)
    parsed = parse_ack(ack)
    assert parsed.control_id == "C\\X1C\\ID" and parsed.code == "AE"
    assert unescape(parsed.control_id) == "C\x1cID"
    assert read_header("MSH\x1c^~\\&\x1cRIS\x1c\x1c\x1c\x1c2024\x1c\x1cORM^O01\x1cX\x1cP\x1c2.5.1\r") is None


def test_multi_valued_dicom_values_never_become_a_list_repr(source: pydicom.Dataset) -> None:
    source.StudyDescription = "CT CHEST\\LOW DOSE"
    source.PatientName = "DOE^JANE\\ROE^RICHARD"
    source.PatientID = "PID-1\\PID-2"
    er7 = _oru(source)
    assert "[" not in er7 and "MultiValue" not in er7
    msg = hl7.parse(er7)
    pid = msg.segment("PID")
    assert _unescape(msg, pid[3][0][0]) == "PID-1\\PID-2"  # an identifier is kept whole
    assert str(pid[5]) == "DOE^JANE~ROE^RICHARD"  # one PID-5 repetition per name
    assert str(msg.segment("OBR")[4][0][1]) == "CT CHEST / LOW DOSE"


def test_too_long_identifiers_are_refused_and_descriptions_cut(source: pydicom.Dataset) -> None:
    source.IssuerOfPatientID = "I" * 25  # PID-3.4 is HD.1 (IS, 20)
    with pytest.raises(PermanentFailure) as excinfo:
        _oru(source)
    assert excinfo.value.code == "hl7.value_too_long" and "PID-3.4" in str(excinfo.value)
    del source.IssuerOfPatientID
    item = pydicom.Dataset()
    item.CodeValue, item.CodeMeaning, item.CodingSchemeDesignator = "C" * 16, "Chest " * 10, "L"
    source.RequestedProcedureCodeSequence = [item]
    obr = hl7.parse(_oru(source)).segment("OBR")
    assert str(obr[4]) == "C" * 16 + "^" + ("Chest " * 10).strip() + "^L"
    item.CodeValue = "C" * 12 + "|" * 4  # 24 characters as written: the code is left out, not cut
    obr = hl7.parse(_oru(source)).segment("OBR")
    assert str(obr[4]) == "^" + ("Chest " * 10).strip()


def test_config_values_must_fit_msh() -> None:
    assert Hl7Settings(sending_facility="A|B").sending_facility == "A|B"
    for bad in ("A\rB", "", "X" * 21, "|" * 7):
        with pytest.raises(ValueError):
            Hl7Settings(sending_facility=bad)
