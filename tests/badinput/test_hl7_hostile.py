"""Hostile HL7 over a real MLLP socket to the running inbound listener (SQLite and PostgreSQL).

Each message with an end block gets an ACK with AE or AR, its raw text is kept in
``inbound_messages`` (nothing is stored as an order), and a good ORM afterwards still gets AA.
Frames without an end block are dropped with the connection, and the listener keeps serving.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from radassist.config import Hl7Settings, Settings
from radassist.db.tables import InboundMessage, Order
from radassist.hl7.mllp import END_BLOCK, START_BLOCK
from radassist.hl7.ris_ack import parse_ack
from tests.badinput.conftest import CrashWatch
from tests.hl7.test_inbound import RunningListener, orm

SB, EB = START_BLOCK, END_BLOCK


def _msh(fields: str = "ORM^O01^ORM_O01|{cid}|P|2.5.1", sep: str = "|", enc: str = "^~\\&") -> str:
    return f"MSH{sep}{enc}{sep}RIS{sep}HOSP{sep}RADASSIST{sep}RAD{sep}20240501101500{sep}{sep}" + fields.replace("|", sep)


def _orm_body(obr_extra: str = "", accession: str = "ACC1") -> str:
    return ("\rPID|1||PID1^^^HOSP^MR||HOSTILE^PATIENT\rORC|NW|PLC1^HIS|FIL1^RIS||SC\r"
            f"OBR|1|PLC1^HIS|FIL1^RIS|RP1^CT chest^L|||||||||{obr_extra}|||||{accession}\r")


def _msg(cid: str, **kw: str) -> bytes:
    return (_msh().format(cid=cid) + _orm_body(**kw)).encode()


#: name -> (bytes written on one connection, MSH-10 marker expected in the kept raw text or None)
FRAMED: dict[str, tuple[bytes, str | None]] = {
    "field_separator_is_a_letter": (SB + _msh(sep="A").format(cid="HX1").encode() + b"\r" + EB, "HX1"),
    "encoding_characters_contain_the_separator": (SB + _msh(enc="^|\\&").format(cid="HX2").encode() + b"\r" + EB, "HX2"),
    "encoding_characters_missing": (SB + b"MSH|" + b"|RIS|HOSP|||20240501||ORM^O01|HX3|P|2.5.1\r" + EB, "HX3"),
    "segments_with_other_separator_than_msh": (SB + _msh().format(cid="HX4").encode() + _orm_body().encode().replace(b"|", b"\x1f") + EB, "HX4"),
    "one_megabyte_field": (SB + _msg("HX5", obr_extra="A" * (1 << 20), accession="") + EB, "HX5"),
    "one_megabyte_msh_3": (SB + _msh().format(cid="HX6").replace("RIS", "R" * (1 << 20), 1).encode() + _orm_body(accession="").encode() + EB, "HX6"),
    "missing_msh_10": (SB + _msh().format(cid="").encode() + _orm_body().encode() + EB, "HOSTILE"),
    "missing_msh_9": (SB + _msh(fields="|HX8|P|2.5.1").encode() + _orm_body().encode() + EB, "HX8"),
    "sql_injection_in_control_id": (SB + _msg("'; DROP TABLE orders;--", accession="") + EB, "DROP TABLE"),
    "sql_injection_in_accession": (SB + _msg("HX10", accession="x'); DELETE FROM orders;--").replace(b"ORM^O01^ORM_O01", b"ORM^O99") + EB, "HX10"),
    "script_in_sending_application": (SB + _msh().format(cid="HX11").replace("RIS", "<script>alert(1)</script>", 1).encode() + _orm_body().encode().replace(b"OBR", b"XXX") + EB, "HX11"),
    "non_utf8_bytes": (SB + _msg("HX12").replace(b"HOSTILE", b"\xff\xfe\xc3\x28\x80") .replace(b"OBR|1", b"OBR|X") .replace(b"ACC1", b"") + EB, "HX12"),
    "nul_bytes": (SB + _msg("HX13").replace(b"HOSTILE", b"HOS\x00TILE").replace(b"ACC1", b"") + EB, "HX13"),
    "nested_start_blocks": (SB + SB + SB + _msg("HX14").replace(b"ACC1", b"") + EB, "HX14"),
    "start_block_inside_message": (SB + _msg("HX15").replace(b"PID|1", SB + b"PID|1").replace(b"ACC1", b"") + EB, "HX15"),
    "unframed_then_framed": (_msg("HX16-LOST") + SB + _msg("HX16").replace(b"ACC1", b"") + EB, "HX16"),
    "version_3": (SB + _msg("HX17").replace(b"|2.5.1", b"|3.0") + EB, "HX17"),
    "adt_not_accepted": (SB + _msg("HX18").replace(b"ORM^O01^ORM_O01", b"ADT^A01") + EB, "HX18"),
    "only_msh": (SB + _msh().format(cid="HX19").encode() + EB, "HX19"),
    "not_hl7_at_all": (SB + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + EB, "GET /"),
    "binary_garbage": (SB + bytes(range(1, 256)).replace(b"\x0b", b"").replace(b"\x1c", b"") + EB, None),
    "segment_names_lowercase_and_empty": (SB + _msh().format(cid="HX22").encode() + b"\r\r\rpid|1\r|||\r" + EB, "HX22"),
    "thousand_segments": (SB + _msh().format(cid="HX23").encode() + b"\rNTE|1|x" * 1000 + b"\r" + EB, "HX23"),
    "repetition_bomb": (SB + _msg("HX24", obr_extra="~" * 100000) .replace(b"ACC1", b"") + EB, "HX24"),
}

#: Well-formed orders with hostile values: accepted (AA) and stored verbatim, parameterised.
ACCEPTED: dict[str, tuple[bytes, str]] = {
    "sql_injection_in_control_id_of_a_valid_order": (SB + _msg("'; DROP TABLE orders;--", accession="INJ1") + EB, "INJ1"),
    "script_in_indication_of_a_valid_order": (SB + _msg("HX31", obr_extra="<script>alert(1)</script>", accession="INJ2") + EB, "INJ2"),
    "one_megabyte_indication_of_a_valid_order": (SB + _msg("HX32", obr_extra="A" * (1 << 20), accession="INJ3") + EB, "INJ3"),
}

#: name -> bytes after which the connection is closed with no end block: no ACK, nothing stored.
UNFINISHED: dict[str, bytes] = {
    "message_without_end_block": SB + _msg("HX90"),
    "only_a_start_block": SB,
    "end_block_half": SB + _msg("HX92") + b"\x1c",
}


def _exchange(port: int, payload: bytes, timeout: float = 20.0) -> bytes | None:
    """Write ``payload`` and read one MLLP frame back (None if the listener closed without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        buffer = b""
        deadline = time.monotonic() + timeout
        while EB not in buffer and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            buffer += chunk
    if EB not in buffer:
        return None
    start = buffer.find(SB)
    return buffer[start + 1 : buffer.find(EB)]


def _good_orm_accepted(listener: RunningListener, n: int) -> bool:
    ack = _exchange(listener.listener.port, SB + orm(control_id=f"GOOD{n}", accession=f"GOODACC{n}").encode() + EB)
    return ack is not None and parse_ack(ack.decode()).code == "AA"


@pytest.fixture
def listener(migrated_settings: Settings) -> Iterator[RunningListener]:
    with RunningListener(migrated_settings, Hl7Settings(accession_field="OBR-18")) as running:
        yield running


def test_hostile_hl7_gets_ae_or_ar_and_is_kept(listener: RunningListener, crash_watch: CrashWatch,
                                                caplog: pytest.LogCaptureFixture,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO)
    problems: list[str] = []
    started = time.monotonic()
    for n, (name, (payload, marker)) in enumerate(FRAMED.items()):
        ack = _exchange(listener.listener.port, payload)
        if ack is None:
            problems.append(f"{name}: no ACK")
        else:
            code = parse_ack(ack.decode("utf-8", "replace")).code
            if code not in ("AE", "AR"):
                problems.append(f"{name}: answered {code}")
        if marker is not None:
            with listener.sessions() as session:
                kept = session.scalars(select(InboundMessage.raw).where(InboundMessage.ack_code != "AA")).all()
            if not any(raw and marker in raw.replace("\ufffd", "") for raw in kept):
                problems.append(f"{name}: raw message not kept")
        if not _good_orm_accepted(listener, n):
            problems.append(f"{name}: a good ORM afterwards was not accepted")
        problems += [f"{name}: crash: {c}" for c in crash_watch.take()]
    for n, (name, (payload, _accession)) in enumerate(ACCEPTED.items(), 50):
        ack = _exchange(listener.listener.port, payload)
        if ack is None or parse_ack(ack.decode()).code != "AA":
            problems.append(f"{name}: a valid order with hostile values was not accepted")
        if not _good_orm_accepted(listener, n):
            problems.append(f"{name}: a good ORM afterwards was not accepted")
        problems += [f"{name}: crash: {c}" for c in crash_watch.take()]
    for n, (name, payload) in enumerate(UNFINISHED.items(), 100):
        if _exchange(listener.listener.port, payload, timeout=0.5) is not None:
            problems.append(f"{name}: answered a frame that never ended")
        if not _good_orm_accepted(listener, n):
            problems.append(f"{name}: a good ORM afterwards was not accepted")
        problems += [f"{name}: crash: {c}" for c in crash_watch.take()]
    crashes = [p for p in problems if ": crash: " in p]
    with capsys.disabled():
        print(f"\nbadinput HL7: {len(FRAMED) + len(ACCEPTED) + len(UNFINISHED)} cases, {len(crashes)} crashes, "
              f"{time.monotonic() - started:.1f}s")
    assert problems == [], "\n".join(problems)
    with listener.sessions() as session:
        # Only the good ORMs and the valid hostile ones made orders (the table is still there); every hostile message is on record with its answer.
        accessions = session.scalar(select(func.count()).select_from(Order))
        assert accessions == len(FRAMED) + len(ACCEPTED) + len(UNFINISHED) + len(ACCEPTED)
        refused = session.scalar(select(func.count()).select_from(InboundMessage).where(InboundMessage.ack_code != "AA"))
        assert refused == len(FRAMED)
    # Nothing the messages carried reached a log record (but MSH-10, which is logged by design).
    for secret in ("HOSTILE", "<script>", "DELETE FROM", "INJ1", "AAAAAAAA"):
        assert secret not in caplog.text, secret
