"""The listener encodes plain C-STORE responses itself (dicom_node.fastpath.responses): they must be pynetdicom's bytes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pynetdicom import evt
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA

from dicom_node.fastpath.responses import answer_stores_directly, encode_store_response

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
            dul=SimpleNamespace(send_pdu=self.pdus.append),
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
