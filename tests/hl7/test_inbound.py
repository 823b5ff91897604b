"""The inbound MLLP listener with python-hl7's MLLPClient as the RIS: orders, signed reports, ACKs.

Each test runs on SQLite and on PostgreSQL (``migrated_settings``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import hl7
import pytest
from hl7.client import MLLPClient
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from sqlalchemy import select

from hl7_node.server import Hl7Listener
from radassist.config import Hl7Settings, Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Event, InboundMessage, Order, Report, Study
from radassist.hl7.ack import AckCode, ErrorCode, build_ack, read_header
from radassist.hl7.oru import build_oru
from radassist.hl7.ris_ack import parse_ack
from radassist.identifiers import accession_hash
from radassist.ris.context import order_context
from radassist.ris.receive import handle_message
from tests.dicom_factories import make_ct_study

ACCESSION = "SENTACC0815"
PLACER = "PLC-2024-001"
FILLER = "FIL-99-123"
INDICATION = "Cough for 3 weeks, rule out pneumonia"
CLINICAL = "Smoker \\T\\ fever"  # ER7-escaped "&"
FINAL_TEXT = ["FINDINGS: Right lower lobe consolidation.", "IMPRESSION: Pneumonia."]


class RunningListener:
    def __init__(self, settings: Settings, hl7_settings: Hl7Settings) -> None:
        self.sessions = make_sessionmaker(settings)
        self.listener = Hl7Listener(self.sessions, hl7_settings, host="127.0.0.1", port=0)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="hl7-listener")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.listener.start())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> RunningListener:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.listener.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.sessions.kw["bind"].dispose()

    def send(self, message: str) -> hl7.Message:
        with MLLPClient("127.0.0.1", self.listener.port) as client:
            return hl7.parse(client.send_message(message).decode("utf-8"))


@pytest.fixture
def ris_feed(migrated_settings: Settings) -> Iterator[RunningListener]:
    with RunningListener(migrated_settings, Hl7Settings(accession_field="OBR-18")) as running:
        yield running


def _msh(kind: str, control_id: str, version: str = "2.5.1") -> str:
    return f"MSH|^~\\&|RIS|HOSP|RADASSIST|RADDEPT|20240501101500||{kind}|{control_id}|P|{version}"


def orm(control_id: str = "ORM0001", accession: str = ACCESSION) -> str:
    return (
        "\r".join(
            [
                _msh("ORM^O01^ORM_O01", control_id),
                "PID|1||SENTINEL-PID-4711^^^HOSP^MR||SENTINEL^PHI||19010203|O",
                f"ORC|NW|{PLACER}^HIS|{FILLER}^RIS||SC||^^^^^S",
                f"OBR|1|{PLACER}^HIS|{FILLER}^RIS|RP-CT-CHEST^CT chest without contrast^L|||||||||{CLINICAL}"
                f"|||||{accession}|||||||||||||R05^{INDICATION}^I10",
            ]
        )
        + "\r"
    )


def omi(control_id: str = "OMI0001", accession: str = "SENTACC0999") -> str:
    return (
        "\r".join(
            [
                _msh("OMI^O23^OMI_O23", control_id),
                "PID|1||SENTINEL-PID-4711^^^HOSP^MR||SENTINEL^PHI",
                "ORC|NW|PLC-7^HIS|FIL-7^RIS||SC",
                "TQ1|1||||||||A^ASAP^HL70485",
                "OBR|1|PLC-7^HIS|FIL-7^RIS|RP-XR-CHEST^XR chest 2 views^L|||||||||||||||||||||||||||Fall^Trauma, fall",
                f"IPC|{accession}|RP-XR-1|1.2.3.4.5|SPS-1|CR",
            ]
        )
        + "\r"
    )


def oru_final(
    control_id: str = "ORU0001", status: str = "F", placer: str = PLACER, filler: str = FILLER
) -> str:
    obx = [f"OBX|{i}|TX|59776-5^Findings^LN|1|{line}||||||{status}" for i, line in enumerate(FINAL_TEXT, 1)]
    obx.append(f"OBX|3|ST|110180^Study Instance UID^DCM|1|1.2.3||||||{status}")
    return (
        "\r".join(
            [
                _msh("ORU^R01^ORU_R01", control_id),
                "PID|1||SENTINEL-PID-4711^^^HOSP^MR||SENTINEL^PHI",
                f"ORC|RE|{placer}^HIS|{filler}^RIS||CM",
                # OBR-18 empty: the report is found by the order's numbers.
                f"OBR|1|{placer}^HIS|{filler}^RIS|RP-CT-CHEST^CT chest^L|||20240501100000|||||||||||||||"
                f"20240501111500|||{status}",
                *obx,
            ]
        )
        + "\r"
    )


def _msa(ack: hl7.Message) -> tuple[str, str]:
    return str(ack.segment("MSA")[1]), str(ack.segment("MSA")[2])


def test_order_then_study_then_final_report_are_joined(
    ris_feed: RunningListener, caplog: pytest.LogCaptureFixture
) -> None:
    digest = accession_hash(ACCESSION)
    assert digest is not None
    with caplog.at_level(logging.DEBUG):
        assert _msa(ris_feed.send(orm())) == ("AA", "ORM0001")

    # The study arrives afterwards (the DICOM node writes only the accession's hash).
    source = make_ct_study(series_count=1, instances_per_series=1)[0]
    with ris_feed.sessions() as session:
        study = Study(
            study_instance_uid=str(source.StudyInstanceUID), accession_number_hash=digest, modality="CT"
        )
        session.add(study)
        session.commit()
        study_id = study.id

    with caplog.at_level(logging.DEBUG):
        ack = ris_feed.send(oru_final())
    assert _msa(ack) == ("AA", "ORU0001")
    assert str(ack.segment("MSH")[9]) == "ACK^R01^ACK" and str(ack.segment("MSH")[5]) == "RIS"

    with ris_feed.sessions() as session:
        order = session.scalars(select(Order)).one()
        assert order.accession_number_hash == digest
        assert (order.placer_order_number, order.placer_namespace) == (PLACER, "HIS")
        assert (order.filler_order_number, order.filler_namespace) == (FILLER, "RIS")
        assert order.priority == "S" and order.order_control == "NW"
        report = session.scalars(select(Report)).one()
        assert report.study_id == study_id and report.order_id == order.id
        assert report.status == "F" and report.text == "\n".join(FINAL_TEXT)
        assert report.observed_at == "20240501111500"

        context = order_context(session, digest)
        assert context is not None
        assert context.indication == f"{INDICATION}; Smoker & fever"
        assert (context.procedure_code, context.procedure_text) == (
            "RP-CT-CHEST",
            "CT chest without contrast",
        )
        assert context.final_report_text == "\n".join(FINAL_TEXT) and context.final_report_status == "F"
        assert INDICATION not in repr(context)
        tags = {e.tag for e in session.scalars(select(Event))}
        assert {"hl7:order:received", "hl7:report:received"} <= tags
        kept = session.scalars(select(InboundMessage)).all()
        assert [(m.ack_code, m.raw) for m in kept] == [("AA", None), ("AA", None)]
        assert order_context(session, "ffffffffffffffff") is None

    # Our ORU for that study now carries the RIS's own order numbers.
    er7 = build_oru(
        source,
        findings="Consolidation.",
        impression="Pneumonia.",
        control_id="c1",
        study_instance_uid=str(source.StudyInstanceUID),
        hl7=Hl7Settings(),
        now=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        order=context,
    )
    obr = hl7.parse(er7).segment("OBR")
    assert (str(obr[2]), str(obr[3])) == (f"{PLACER}^HIS", f"{FILLER}^RIS")

    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (ACCESSION, "SENTINEL", INDICATION, "consolidation", PLACER):
        assert secret not in logged


def test_omi_order_and_resent_report_are_stored_once(ris_feed: RunningListener) -> None:
    assert _msa(ris_feed.send(omi()))[0] == "AA"
    digest = accession_hash("SENTACC0999")
    with ris_feed.sessions() as session:
        context = order_context(session, digest)
    assert context is not None
    assert context.priority == "A" and context.indication == "Trauma, fall"
    assert (context.placer_order_number, context.filler_order_number) == ("PLC-7", "FIL-7")

    # A corrected report, sent twice (the RIS lost our first ACK): one row, and it supersedes.
    for _ in range(2):
        assert _msa(ris_feed.send(oru_final("ORU-C1", status="C", placer="PLC-7", filler="FIL-7")))[0] == "AA"
    # A preliminary result is acknowledged and not stored.
    assert _msa(ris_feed.send(oru_final("ORU-P1", status="P", placer="PLC-7", filler="FIL-7")))[0] == "AA"
    with ris_feed.sessions() as session:
        reports = session.scalars(select(Report)).all()
        assert [(r.status, r.accession_number_hash, r.study_id) for r in reports] == [("C", digest, None)]
        context = order_context(session, digest)
    assert context is not None and context.final_report_status == "C"


@pytest.mark.parametrize(
    ("message", "expected", "error_code"),
    [
        ("this is not HL7 at all", "AR", "hl7.inbound.malformed"),
        (_msh("ADT^A01^ADT_A01", "ADT1") + "\rPID|1||X^^^^MR\r", "AR", "hl7.inbound.unsupported"),
        (_msh("ORM^O01^ORM_O01", "") + "\rOBR|1\r", "AR", "hl7.inbound.malformed"),
        (orm("ORM-NOACC", accession=""), "AE", "hl7.inbound.no_accession"),
        (_msh("ORM^O01", "ORM-NOOBR") + "\rPID|1||X^^^^MR\r", "AE", "hl7.inbound.no_obr"),
        (oru_final("ORU-UNKNOWN", placer="NOPE", filler="NOPE"), "AE", "hl7.inbound.no_accession"),
    ],
    ids=["garbage", "unsupported-type", "no-control-id", "no-accession", "no-obr", "unknown-order"],
)
def test_rejected_messages_get_a_reason_and_are_kept(
    ris_feed: RunningListener, message: str, expected: str, error_code: str
) -> None:
    with MLLPClient("127.0.0.1", ris_feed.listener.port) as client:
        raw_ack = client.send_message(message).decode("utf-8")
    ack = parse_ack(raw_ack.strip("\x0b\x1c\r"))
    assert ack.code == expected and ack.text  # the reason is in MSA-3 / ERR
    assert "SENTINEL" not in ack.text and ACCESSION not in ack.text
    with ris_feed.sessions() as session:
        kept = session.scalars(select(InboundMessage)).one()
        assert (kept.ack_code, kept.error_code) == (expected, error_code)
        assert kept.raw == message and kept.error and kept.error in ack.text
        assert session.scalars(select(Order)).first() is None
        assert session.scalars(select(Report)).first() is None


def test_one_connection_many_messages_and_v231(ris_feed: RunningListener) -> None:
    port = ris_feed.listener.port
    with MLLPClient("127.0.0.1", port) as client:
        first = hl7.parse(client.send_message(orm("M1", accession="ACC-1")).decode("utf-8"))
        second = hl7.parse(
            client.send_message(orm("M2", accession="ACC-2").replace("|2.5.1", "|2.3.1", 1)).decode("utf-8")
        )
        bad = hl7.parse(client.send_message(_msh("ORM^O02", "M3", version="2.3.1") + "\r").decode("utf-8"))
    assert _msa(first) == ("AA", "M1") and _msa(second) == ("AA", "M2")
    assert str(second.segment("MSH")[9]) == "ACK^O01^ACK" and str(second.segment("MSH")[12]) == "2.3.1"
    assert _msa(bad) == ("AR", "M3")
    assert "201" in str(bad.segment("ERR")[1])  # v2.3.1 ERR-1 with table 0357 code
    with ris_feed.sessions() as session:
        assert len(session.scalars(select(Order)).all()) == 2


@pytest.mark.parametrize("version", ["2.5.1", "2.3.1"])
def test_acks_validate_strict_and_ids_are_fresh(version: str) -> None:
    header = read_header(orm().replace("|2.5.1", f"|{version}", 1))
    assert header is not None and header.control_id == "ORM0001"
    for code, error in ((AckCode.AA, None), (AckCode.AE, ErrorCode.REQUIRED_FIELD_MISSING)):
        ack = build_ack(header, code, error=error, text="no accession number in OBR-18 | ^ & ~")
        parse_message(ack, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True).validate()
        parsed = parse_ack(ack)
        assert (parsed.code, parsed.control_id) == (code.value, "ORM0001")
        if error is not None:
            assert parsed.text.startswith("no accession number in OBR-18 | ^ & ~")
    # The ACK's own MSH-10 is fresh each time (a RIS may de-duplicate on it).
    first, second = (hl7.parse(build_ack(header, AckCode.AA)) for _ in range(2))
    assert str(first.segment("MSH")[10]) != str(second.segment("MSH")[10])


def test_a_database_failure_is_ae(
    make_settings: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # No migrations ran: every write fails, as with a database that is down.
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    sessions = make_sessionmaker(settings)
    outcome = handle_message(sessions, orm("DB-1"), Hl7Settings(accession_field="OBR-18"))
    sessions.kw["bind"].dispose()
    assert outcome.ack_code is AckCode.AE and outcome.error_code == "hl7.inbound.db"
    ack = parse_ack(outcome.ack)
    assert ack.code == "AE" and ack.control_id == "DB-1" and "send it again" in ack.text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "SENTINEL" not in logged and ACCESSION not in logged
