"""The listener encodes plain C-STORE responses itself (dicom_node.fastpath.responses): they must be pynetdicom's bytes."""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pynetdicom import evt
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA

import dicom_node.fastpath.responses
from dicom_node.fastpath.responses import answer_stores_directly, encode_store_response
from radassist.config import Settings
from tests.node.conftest import Node
from tests.peers import STORESCU

LONG_UID = "1.2.826.0.1.3680043.8.498.31285283700303475180633743980032337045"
"""A 64-character UID (as pydicom's generate_uid makes), fixed so every pytest-xdist worker collects the same test ids."""


def _response(message_id: int, status: int, sop_class: str | None, sop_instance: str | None) -> C_STORE:
    rsp = C_STORE()
    rsp.MessageID = message_id
    rsp.MessageIDBeingRespondedTo = message_id
    rsp.AffectedSOPClassUID = sop_class
    rsp.AffectedSOPInstanceUID = sop_instance
    rsp.Status = status
    return rsp


def _library_pdvs(primitive: C_STORE, context_id: int, max_pdu: int) -> list[list[tuple[int, bytes]]]:
    message = C_STORE_RSP()
    message.primitive_to_message(primitive)
    return [p.presentation_data_value_list for p in message.encode_msg(context_id, max_pdu)]


@pytest.mark.parametrize(
    ("message_id", "status", "sop_class", "sop_instance"),
    [
        (1, 0x0000, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4"),  # even lengths
        (7, 0xA700, "1.2.840.10008.5.1.4.1.1.7", "1.2.3.45"),  # odd lengths: NUL-padded
        (65535, 0xC000, "1.2.840.10008.5.1.4.1.1.88.22", LONG_UID),
        (2, 0x0122, "1.2.840.10008.5.1.4.1.1.2", "1." + "2" * 62),  # 64 characters
        (3, 0xB007, None, "1.2.3"),  # absent UIDs are left out, as the library does
        (4, 0x0000, "1.2.3", None),
    ],
)
def test_the_command_set_is_the_librarys(
    message_id: int, status: int, sop_class: str | None, sop_instance: str | None
) -> None:
    primitive = _response(message_id, status, sop_class, sop_instance)
    [[(context_id, pdv)]] = _library_pdvs(primitive, 5, 16382)
    assert context_id == 5
    assert pdv == b"\x03" + encode_store_response(message_id, status, sop_class, sop_instance)


class _Association:
    """What ``answer_stores_directly`` touches of a pynetdicom association, recording what is sent."""

    def __init__(self, max_pdu: int = 16382, sent_handlers: list[Any] | None = None) -> None:
        self.library_sent: list[tuple[Any, int]] = []
        self.pdus: list[P_DATA] = []
        self._sent_handlers = sent_handlers or []
        self.dimse = SimpleNamespace(
            maximum_pdu_size=max_pdu,
            dul=SimpleNamespace(send_pdu=self.pdus.append, socket=None),
            send_msg=lambda primitive, context_id: self.library_sent.append((primitive, context_id)),
        )

    def get_handlers(self, event: Any) -> list[Any]:
        return self._sent_handlers if event == evt.EVT_DIMSE_SENT else []


def test_a_plain_response_goes_out_as_one_pdv() -> None:
    assoc = _Association()
    answer_stores_directly(assoc)  # type: ignore[arg-type]
    primitive = _response(9, 0x0000, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5")
    assoc.dimse.send_msg(primitive, 3)
    assert assoc.library_sent == []
    [pdu] = assoc.pdus
    assert pdu.presentation_data_value_list == _library_pdvs(primitive, 3, 16382)[0]


@pytest.mark.parametrize(
    ("change", "assoc"),
    [
        (lambda r: setattr(r, "ErrorComment", "unsupported"), _Association()),
        (lambda r: setattr(r, "OffendingElement", [0x00100010]), _Association()),
        (lambda r: None, _Association(max_pdu=64)),  # the response would need two fragments
        (lambda r: None, _Association(sent_handlers=[(print, None)])),  # someone watches EVT_DIMSE_SENT
    ],
    ids=["error comment", "offending element", "small peer PDUs", "EVT_DIMSE_SENT handler"],
)
def test_anything_else_goes_the_librarys_way(change: Any, assoc: _Association) -> None:
    answer_stores_directly(assoc)  # type: ignore[arg-type]
    primitive = _response(9, 0xC000, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5." + "6" * 50)
    change(primitive)
    assoc.dimse.send_msg(primitive, 3)
    assert assoc.pdus == []
    assert assoc.library_sent == [(primitive, 3)]


def test_requests_go_the_librarys_way() -> None:
    assoc = _Association()
    answer_stores_directly(assoc)  # type: ignore[arg-type]
    request = C_STORE()
    request.MessageID = 1
    request.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    request.AffectedSOPInstanceUID = "1.2.3"
    request.Priority = 0
    assoc.dimse.send_msg(request, 1)
    assert assoc.library_sent == [(request, 1)]


# --- a response to a request served on the DUL thread is sent from there at once ----------------


class _Socket:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)


class _Dul(threading.Thread):
    """A DUL thread stand-in that answers one response from its own thread (as an inline serve does)."""

    def __init__(self, state: str = "Sta6", queued: bool = False) -> None:
        super().__init__()
        self.state_machine = SimpleNamespace(current_state=state)
        self.to_provider_queue: queue.Queue[Any] = queue.Queue()
        if queued:
            self.to_provider_queue.put(P_DATA())
        self.socket = _Socket()
        self.pdus: list[P_DATA] = []
        self.answer: Callable[[], None] = lambda: None

    def send_pdu(self, primitive: P_DATA) -> None:
        self.pdus.append(primitive)

    def run(self) -> None:
        self.answer()


def _answer(dul: _Dul, *, from_dul_thread: bool = True, pdu_sent_handlers: bool = False) -> C_STORE:
    assoc = _Association()
    assoc.dimse.dul = dul
    assoc.dul = dul  # type: ignore[attr-defined]
    assoc.get_handlers = lambda event: [(print, None)] if pdu_sent_handlers and event == evt.EVT_PDU_SENT else []  # type: ignore[method-assign]
    answer_stores_directly(assoc)  # type: ignore[arg-type]
    primitive = _response(9, 0x0000, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5")
    dul.answer = lambda: assoc.dimse.send_msg(primitive, 3)
    if from_dul_thread:
        dul.start()
        dul.join(10)
    else:
        dul.answer()
    return primitive


def test_a_response_on_the_dul_thread_in_sta6_is_sent_at_once() -> None:
    dul = _Dul()
    primitive = _answer(dul)
    assert dul.pdus == []
    pdata = P_DATA()
    pdata.presentation_data_value_list.extend(_library_pdvs(primitive, 3, 16382)[0])
    assert dul.socket.sent == [P_DATA_TF(pdata).encode()]


@pytest.mark.parametrize(
    ("dul_kwargs", "kwargs"),
    [
        ({}, {"from_dul_thread": False}),
        ({"state": "Sta7"}, {}),  # releasing: the state machine decides
        ({"queued": True}, {}),  # a PDU waits to be sent: it goes first
        ({}, {"pdu_sent_handlers": True}),
    ],
    ids=["another thread", "not Sta6", "a PDU queued before it", "EVT_PDU_SENT handler"],
)
def test_otherwise_the_response_waits_for_the_duls_turn(dul_kwargs: dict[str, Any], kwargs: dict[str, bool]) -> None:
    dul = _Dul(**dul_kwargs)
    primitive = _answer(dul, **kwargs)
    assert dul.socket.sent == []
    [pdu] = dul.pdus
    assert pdu.presentation_data_value_list == _library_pdvs(primitive, 3, 16382)[0]


def test_a_live_listener_sends_its_responses_at_once(
    migrated_settings: Settings, start_node: Callable[..., Node], testdata: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """storescu gets every answer; those of requests served on the DUL thread were sent from there."""
    decided: list[tuple[threading.Thread, bool]] = []
    sends_now = dicom_node.fastpath.responses._sends_now

    def recording(assoc: Any, dul: Any) -> bool:
        at_once = sends_now(assoc, dul)
        decided.append((threading.current_thread(), at_once))
        return at_once

    monkeypatch.setattr(dicom_node.fastpath.responses, "_sends_now", recording)
    node = start_node(migrated_settings, pynetdicom_fast_path=True)
    instance = testdata / "pydicom-data" / "JPGLosslessP14SV1_1s_1f_8b.dcm"
    result = subprocess.run(
        [STORESCU, "-R", "-xs", "-aet", "MODALITY", "-aec", "RADASSIST", "127.0.0.1", str(node.port),
         *[str(instance)] * 6],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert node.counters.instances_stored + node.counters.instances_duplicate == 6
    assert len(decided) == 6  # one decision per response
    # A request goes the library's way (the association thread) when it arrives before pynetdicom
    # flags the association established, or while that thread is still finishing the previous
    # request it served, after queuing its response (under load, CI's first run of this test saw
    # two of four go that way): dicom_node.fastpath.inline_store.  Every request served on the DUL
    # thread had its response sent at once.
    on_dul_thread = [at_once for thread, at_once in decided if type(thread).__name__ == "DULServiceProvider"]
    assert on_dul_thread, "no request was served on the DUL thread"
    assert all(on_dul_thread)
    assert not any(at_once for thread, at_once in decided if type(thread).__name__ != "DULServiceProvider")
