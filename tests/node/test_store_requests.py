"""The listener decodes plain C-STORE requests itself (dicom_node.fastpath.store_requests): the primitives
must be the ones pynetdicom's own decoding makes, and anything else must go the library's way."""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from types import SimpleNamespace
from typing import Any

import pytest
from pydicom.uid import generate_uid
from pynetdicom import _config, evt
from pynetdicom.dimse_messages import C_ECHO_RQ, C_STORE_RQ, DIMSEMessage
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.pdu_primitives import P_DATA

from dicom_node.fastpath.store_requests import decode_store_requests_directly

CT = "1.2.840.10008.5.1.4.1.1.2"


def _request(
    message_id: int = 7, sop_instance: str = "1.2.3.4", data: bytes = b"\x08\x00" * 50, **more: Any
) -> C_STORE:
    request = C_STORE()
    request.MessageID = message_id
    request.AffectedSOPClassUID = CT
    request.AffectedSOPInstanceUID = sop_instance
    request.Priority = more.pop("priority", 2)
    for name, value in more.items():
        setattr(request, name, value)
    request.DataSet = BytesIO(data)
    return request


def _pdata(primitive: Any, context_id: int = 3, max_pdu: int = 16382) -> list[P_DATA]:
    message = (C_STORE_RQ if isinstance(primitive, C_STORE) else C_ECHO_RQ)()
    message.primitive_to_message(primitive)
    return list(message.encode_msg(context_id, max_pdu))


def _library(pdata: list[P_DATA]) -> Any:
    message = DIMSEMessage()
    assert [message.decode_msg(p) for p in pdata][-1]
    return message.message_to_primitive()


class _Association:
    """What ``decode_store_requests_directly`` touches of a pynetdicom association."""

    def __init__(self, recv_handlers: list[Any] | None = None) -> None:
        self.queued: list[tuple[int, Any]] = []
        self.library_received: list[P_DATA] = []
        self._recv_handlers = recv_handlers or []
        self.dimse = SimpleNamespace(
            message=None,
            receive_primitive=self.library_received.append,
            msg_queue=SimpleNamespace(put=self.queued.append),
        )

    def get_handlers(self, event: Any) -> list[Any]:
        return self._recv_handlers if event == evt.EVT_DIMSE_RECV else []


def _fields(primitive: C_STORE) -> dict[str, Any]:
    names = ("MessageID", "Priority", "AffectedSOPClassUID", "AffectedSOPInstanceUID",
             "MoveOriginatorApplicationEntityTitle", "MoveOriginatorMessageID", "_context_id")  # fmt: skip
    assert primitive.DataSet is not None
    return {name: (getattr(primitive, name), type(getattr(primitive, name))) for name in names} | {
        "data": primitive.DataSet.getvalue()
    }


@pytest.mark.parametrize(
    ("request_", "max_pdu"),
    [
        (_request(), 16382),
        (_request(sop_instance="1.2.3.45", priority=0), 16382),  # odd length: NUL-padded
        (_request(message_id=65535, sop_instance=generate_uid()), 16382),
        (_request(data=bytes(range(256)) * 2000), 16382),  # a data set in many P-DATA
        (_request(data=bytes(range(256)) * 40), 200),  # small peer PDUs
    ],
    ids=["plain", "odd uid", "largest message id", "many fragments", "small pdus"],
)
def test_a_plain_request_is_the_librarys_primitive(request_: C_STORE, max_pdu: int) -> None:
    pdata = _pdata(request_, max_pdu=max_pdu)
    assoc = _Association()
    decode_store_requests_directly(assoc)  # type: ignore[arg-type]
    for p in pdata:
        assoc.dimse.receive_primitive(p)
    assert assoc.library_received == []
    [(context_id, primitive)] = assoc.queued
    assert context_id == 3
    assert _fields(primitive) == _fields(_library(pdata))


def test_a_command_and_its_data_in_one_pdata_and_requests_one_after_another() -> None:
    assoc = _Association()
    decode_store_requests_directly(assoc)  # type: ignore[arg-type]
    for n in (1, 2):
        together = P_DATA()
        pdvs: list[Any] = [
            list(pdv) for p in _pdata(_request(message_id=n)) for pdv in p.presentation_data_value_list
        ]
        together.presentation_data_value_list = pdvs
        assoc.dimse.receive_primitive(together)
    assert [(cx, p.MessageID) for cx, p in assoc.queued] == [(3, 1), (3, 2)]


def _moved() -> C_STORE:
    return _request(MoveOriginatorApplicationEntityTitle="ARCHIVE", MoveOriginatorMessageID=3)


@pytest.fixture
def chunked() -> Iterator[None]:
    before = _config.STORE_RECV_CHUNKED_DATASET
    _config.STORE_RECV_CHUNKED_DATASET = True
    yield
    _config.STORE_RECV_CHUNKED_DATASET = before


@pytest.mark.parametrize(
    ("pdata", "assoc", "library_busy"),
    [
        (_pdata(_moved()), _Association(), False),  # a C-MOVE originator's elements
        (_pdata(_request(), max_pdu=60), _Association(), False),  # the command set split over fragments
        (
            _pdata(_request()),
            _Association(recv_handlers=[(print, None)]),
            False,
        ),  # someone watches EVT_DIMSE_RECV
        (_pdata(_request()), _Association(), True),  # the library has begun a message
        (_pdata(C_ECHO()), _Association(), False),
    ],
    ids=["c-move originator", "split command", "EVT_DIMSE_RECV handler", "library busy", "c-echo"],
)
def test_anything_else_goes_the_librarys_way(
    pdata: list[P_DATA], assoc: _Association, library_busy: bool
) -> None:
    decode_store_requests_directly(assoc)  # type: ignore[arg-type]
    if library_busy:
        assoc.dimse.message = DIMSEMessage()
    for p in pdata:
        assoc.dimse.receive_primitive(p)
    assert assoc.queued == []
    assert assoc.library_received == pdata


def test_pynetdicoms_chunked_store_goes_the_librarys_way(chunked: None) -> None:
    assoc = _Association()
    decode_store_requests_directly(assoc)  # type: ignore[arg-type]
    pdata = _pdata(_request())
    for p in pdata:
        assoc.dimse.receive_primitive(p)
    assert assoc.library_received == pdata


def test_a_command_inside_a_data_set_raises() -> None:
    assoc = _Association()
    decode_store_requests_directly(assoc)  # type: ignore[arg-type]
    first, *_rest = _pdata(_request(data=bytes(40000)))
    assoc.dimse.receive_primitive(first)
    with pytest.raises(ValueError, match="command fragment"):
        assoc.dimse.receive_primitive(_pdata(_request())[0])
    assert assoc.queued == []
