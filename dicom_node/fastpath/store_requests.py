"""C-STORE requests decoded directly from their command set, without a pydicom data set.

pynetdicom assembles every DIMSE message in a ``DIMSEMessage``: the command set is decoded by
pydicom into a data set, the message class looked up from its Command Field, each element converted
and set on the primitive, and each data set fragment sliced and then written into a ``BytesIO`` (two
copies of every received byte: 1 MiB of copying for a 512x512 CT slice).  A C-STORE request's
command set (PS3.7 9.3.1.1) is always Implicit VR Little Endian (PS3.7 6.3.1) and, from a sender
that is not relaying a C-MOVE, holds only the seven elements read here; they are set on the
``C_STORE`` primitive through its own setters (which validate them, as for the library), and the
data set's fragments are copied once, into the request's ``BytesIO``.

A message goes the library's way, from its first fragment, unless it is such a request whose whole
command set is in the first P-DATA: another command, an element not read here (a C-MOVE
originator's), several values, a value the primitive refuses, a command split over fragments, a
handler bound to ``EVT_DIMSE_RECV`` (it is given the library's message), pynetdicom's
``STORE_RECV_CHUNKED_DATASET``, or a message the library has begun.  A command fragment arriving
while a request's data set is assembled is a protocol violation: it raises, and the state machine
guard (:mod:`dicom_node.fastpath.state_machine_guard`) aborts the association, where the library
would have decoded garbage.  tests/node/test_store_requests.py holds the primitives to the library's.
"""

from __future__ import annotations

import struct
from io import BytesIO
from typing import TYPE_CHECKING, Any

from pynetdicom import _config, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA

if TYPE_CHECKING:
    from pynetdicom.association import Association

C_STORE_RQ_COMMAND_FIELD = 0x0001
NO_DATA_SET = 0x0101
_GROUP_LENGTH, _COMMAND_FIELD, _DATA_SET_TYPE = 0x0000, 0x0100, 0x0800
_UIDS = {0x0002: "AffectedSOPClassUID", 0x1000: "AffectedSOPInstanceUID"}
_NUMBERS = {0x0110: "MessageID", 0x0700: "Priority"}
_COMMAND, _LAST = 0x01, 0x02
"""Message control header bits of a PDV (PS3.8 E.2)."""


class _Request:
    """A C-STORE request whose data set is being received."""

    __slots__ = ("context_id", "data_set", "primitive")

    def __init__(self, primitive: C_STORE, context_id: int) -> None:
        self.primitive = primitive
        self.context_id = context_id
        self.data_set = BytesIO()


def decode_store_request(command_set: bytes) -> C_STORE | None:
    """The C-STORE primitive of a C-STORE-RQ command set with a data set, set as the library sets
    it; None for anything this module leaves to the library (see the module docstring)."""
    values: dict[str, Any] = {}
    command_field = data_set_type = None
    offset, end = 0, len(command_set)
    while offset < end:
        if end - offset < 8:
            return None
        group, element, length = struct.unpack_from("<HHI", command_set, offset)
        offset += 8
        value = command_set[offset : offset + length]
        offset += length
        if group != 0x0000 or len(value) != length:
            return None
        if element in _UIDS:
            text = value.decode("latin-1").rstrip("\0 ")
            if "\\" in text:
                return None
            values[_UIDS[element]] = text  # the setter makes it a UID (and checks it), as for the library
        elif element in _NUMBERS or element in (_COMMAND_FIELD, _DATA_SET_TYPE):
            if length != 2:
                return None
            (number,) = struct.unpack("<H", value)
            if element == _COMMAND_FIELD:
                command_field = number
            elif element == _DATA_SET_TYPE:
                data_set_type = number
            else:
                values[_NUMBERS[element]] = number
        elif element != _GROUP_LENGTH:
            return None
    if command_field != C_STORE_RQ_COMMAND_FIELD or data_set_type in (None, NO_DATA_SET):
        return None
    primitive = C_STORE()
    try:
        for name, value in values.items():
            setattr(primitive, name, value)
    except (TypeError, ValueError):
        return None
    return primitive


def decode_store_requests_directly(assoc: Association) -> None:
    """Decode ``assoc``'s plain C-STORE requests with :func:`decode_store_request`."""
    dimse = assoc.dimse
    library_receive = dimse.receive_primitive
    pending: list[_Request] = []
    """The request whose data set is arriving (none, or one: requests come one after another)."""

    def take(values: list[tuple[int, bytes]]) -> None:
        """The data set fragments of the pending request; the request goes on with its last one."""
        request = pending[0]
        for _context_id, data in values:
            if data[0] & _COMMAND:
                pending.clear()
                raise ValueError("a command fragment arrived inside a C-STORE request's data set")
            with memoryview(data) as view:
                request.data_set.write(view[1:])
            if data[0] & _LAST:
                pending.clear()
                _complete(dimse, request)
                return

    def receive_primitive(primitive: P_DATA) -> None:
        if pending:
            take(primitive.presentation_data_value_list)
            return
        request = _starts_a_request(assoc, primitive)
        if request is None:
            library_receive(primitive)
            return
        pending.append(request)
        take(primitive.presentation_data_value_list[1:])

    dimse.receive_primitive = receive_primitive  # type: ignore[method-assign]


def _starts_a_request(assoc: Association, primitive: Any) -> _Request | None:
    """The C-STORE request that ``primitive`` begins, when this module decodes it; else None."""
    if (
        assoc.dimse.message is not None
        or not isinstance(primitive, P_DATA)
        or _config.STORE_RECV_CHUNKED_DATASET
    ):
        return None
    values = primitive.presentation_data_value_list
    if not values or not values[0][1] or values[0][1][0] & (_COMMAND | _LAST) != (_COMMAND | _LAST):
        return None
    if assoc.get_handlers(evt.EVT_DIMSE_RECV):
        return None
    context_id, data = values[0]
    store = decode_store_request(bytes(data[1:]))
    if store is None:
        return None
    store._context_id = context_id
    return _Request(store, context_id)


def _complete(dimse: Any, request: _Request) -> None:
    """Hand the whole request on, where the library would (its ``msg_queue``)."""
    request.primitive.DataSet = request.data_set
    dimse.msg_queue.put((request.context_id, request.primitive))


__all__ = ["decode_store_request", "decode_store_requests_directly"]
