"""One test per product fix the hostile-input runs led to (each failed before its fix)."""

from __future__ import annotations

import datetime as dt
import struct
import time
from collections.abc import Callable

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from radassist.config import Hl7Settings, Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import InboundMessage
from radassist.errors import RejectedInput
from radassist.intake.structure import check_complete
from radassist.ris.receive import handle_message
from tests.badinput import rawdicom as raw
from tests.badinput.conftest import CrashWatch
from tests.badinput.dicom_cases import PDU_SEQUENCES
from tests.node.conftest import Node
from tests.node.corpus import CT, SC, _body, _meta

IMPLICIT_LE = "1.2.840.10008.1.2"


def _store(node: Node, context: raw.Context, sop_class: str, data_class: str) -> int | None:
    uid = generate_uid()
    with raw.connect(node.port) as sock:
        assert raw.associate(sock, [context]).accepted_contexts.get(context.id) == 0
        reply = raw.c_store(sock, context.id, sop_class, uid, _body(uid, sop_class=data_class))
        raw.release(sock)
    return reply.status


def test_a_c_store_on_a_context_for_another_sop_class_is_refused(sqlite_node: Node) -> None:
    """dicom_node/handlers.py: pynetdicom serves a C-STORE by the command's SOP class, whatever the
    context; a CT command and data set on a Secondary Capture (or Verification) context was stored."""
    assert _store(sqlite_node, raw.Context(1, SC), CT, CT) == 0xA900
    assert _store(sqlite_node, raw.Context(1, raw.VERIFICATION), SC, SC) == 0xA900
    assert _store(sqlite_node, raw.Context(1, SC), SC, SC) == 0x0000  # the same path, agreeing


def _sequence(item_length: int, content: bytes, explicit: bool = True) -> bytes:
    """(0008,1115) ReferencedSeriesSequence of defined length holding one item that may lie."""
    item = struct.pack("<HHI", 0xFFFE, 0xE000, item_length) + content
    if explicit:
        return struct.pack("<HH2sHI", 0x0008, 0x1115, b"SQ", 0, len(item)) + item
    return struct.pack("<HHI", 0x0008, 0x1115, len(item)) + item


@pytest.mark.parametrize("explicit", [True, False])
def test_an_item_longer_than_its_sequence_is_refused(explicit: bool) -> None:
    """radassist/intake/structure.py: items inside a defined-length sequence were not checked, so an
    item claiming more than its sequence (a reader then swallows the next elements) was stored."""
    ts = "1.2.840.10008.1.2.1" if explicit else IMPLICIT_LE
    uid = generate_uid()
    element = struct.pack("<HH2sH", 0x0008, 0x1150, b"UI", 6) if explicit else struct.pack("<HHI", 0x0008, 0x1150, 6)
    good = _sequence(14, element + b"1.2.3\x00", explicit)
    bad = _sequence(400, element + b"1.2.3\x00", explicit)
    head = _meta(uid, ts=ts)
    check_complete(head + good, ts)
    with pytest.raises(RejectedInput) as refused:
        check_complete(head + bad, ts)
    assert refused.value.code == "dicom.truncated"
    # An element inside an item that runs past the item's end is refused too.
    inner = struct.pack("<HH2sH", 0x0008, 0x1150, b"UI", 60) if explicit else struct.pack("<HHI", 0x0008, 0x1150, 60)
    with pytest.raises(RejectedInput):
        check_complete(head + _sequence(14, inner + b"1.2.3\x00", explicit), ts)


def test_garbage_pdus_do_not_hold_association_slots(sqlite_node: Node) -> None:
    """dicom_node/transport.py: each aborted pre-association connection held a slot for the ACSE
    timeout (30 s), so max_associations (16) garbage packets made the node refuse every sender."""
    steps, _ = PDU_SEQUENCES["associate_ac_sent_to_the_node"]
    for _ in range(sqlite_node.settings.dicom.max_associations + 4):
        with raw.connect(sqlite_node.port) as sock:
            assert raw.exchange(sock, steps[0], timeout=2).refused
    started = time.monotonic()
    with raw.connect(sqlite_node.port) as sock:
        reply = raw.associate(sock, [raw.Context(1, raw.VERIFICATION)])
        raw.release(sock)
    assert reply.accepted_contexts.get(1) == 0, reply
    assert time.monotonic() - started < 5


def test_a_pdu_the_state_machine_cannot_take_aborts_cleanly(sqlite_node: Node, crash_watch: CrashWatch) -> None:
    """dicom_node/transport.py: an even presentation context id raised ValueError inside pynetdicom's
    DUL thread and killed it (garbage after an RQ did the same with InvalidEventError in the
    corpus run); now the association is aborted and no thread dies."""
    steps, _ = PDU_SEQUENCES["rq_even_and_duplicate_context_ids"]
    with raw.connect(sqlite_node.port) as sock:
        reply = raw.Reply()
        for step in steps:
            reply = raw.exchange(sock, step, timeout=2)
            if reply.refused:
                break
    assert reply.refused
    time.sleep(0.3)
    assert crash_watch.take() == []


@pytest.mark.parametrize("contexts", [[], [raw.Context(1, raw.VERIFICATION, ())]])
def test_an_rq_without_contexts_or_transfer_syntaxes_is_rejected(sqlite_node: Node, crash_watch: CrashWatch,
                                                                 contexts: list[raw.Context]) -> None:
    """dicom_node/access.py: a context with no transfer syntax raised IndexError in pynetdicom's
    association thread (no answer at all); no context at all was accepted, uselessly."""
    with raw.connect(sqlite_node.port) as sock:
        reply = raw.exchange(sock, raw.associate_rq(contexts), timeout=3)
    assert reply.pdus == [raw.A_ASSOCIATE_RJ]
    assert crash_watch.take() == []


def test_an_hl7_message_with_nul_bytes_is_kept(migrated_settings: Settings) -> None:
    """radassist/hl7/inbound.py: PostgreSQL text cannot hold NUL, so such a message was answered
    but not kept (the row's insert failed); now NUL is kept as U+FFFD (SQLite and PostgreSQL)."""
    sessions = make_sessionmaker(migrated_settings)
    try:
        text = "MSH|^~\\&|RIS|H|RA|R|20240501||ORM^O01|NUL\x001|P|2.5.1\rPID|1||X\x00Y\r"
        outcome = handle_message(sessions, text, Hl7Settings(), now=dt.datetime.now(dt.UTC))
        assert outcome.ack_code.value in ("AE", "AR")
        with sessions() as session:
            kept = session.scalars(select(InboundMessage)).one()
        assert kept.raw == text.replace("\x00", "\ufffd")
        assert kept.control_id == "NUL\ufffd1"
    finally:
        sessions.kw["bind"].dispose()


def test_offsets_past_bigint_are_refused_not_500(migrated_settings: Settings,
                                                 make_settings: Callable[..., Settings]) -> None:
    """radassist/web/routes: ``offset`` had no upper bound; PostgreSQL's OFFSET is a bigint, so
    schemathesis's 2**63 gave a DataError and a 500.  Now 422 everywhere an offset is taken."""
    from fastapi.testclient import TestClient

    from radassist.web.app import create_app
    from tests.web.support import add_user, bearer

    headers = bearer(add_user(migrated_settings, "offsetadmin", "admin"))
    with TestClient(create_app(migrated_settings), raise_server_exceptions=False) as client:
        for path in ["/api/studies", "/api/audit", "/", "/audit"]:
            assert client.get(f"{path}?offset={2**63}", headers=headers).status_code == 422, path
            assert client.get(f"{path}?offset={2**31 - 1}", headers=headers).status_code == 200, path


def test_text_filters_with_control_characters_are_refused_not_500(migrated_settings: Settings) -> None:
    """radassist/web/routes/worklist.py: a NUL in ``modality`` or ``ae`` reached PostgreSQL, which
    refuses NUL in text: schemathesis found the 500.  Filters now take only what they could match."""
    from fastapi.testclient import TestClient

    from radassist.web.app import create_app
    from tests.web.support import add_user, bearer

    headers = bearer(add_user(migrated_settings, "filteradmin", "admin"))
    with TestClient(create_app(migrated_settings), raise_server_exceptions=False) as client:
        for path in ["/api/studies", "/"]:
            for name in ["modality", "ae", "accession"]:
                for bad in ["A\x00B", "A\nB", "A\\B"]:
                    response = client.get(path, params={name: bad}, headers=headers)
                    assert response.status_code == 422, (path, name, bad)
            good = {"modality": "ct", "ae": "MODALITY-1", "accession": "ACC 12/3"}
            assert client.get(path, params=good, headers=headers).status_code == 200, path
