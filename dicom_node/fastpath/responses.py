"""C-STORE responses encoded directly instead of through a pydicom data set.

Every stored instance is answered with a C-STORE-RSP (PS3.7 9.3.1.2).  pynetdicom turns the response
primitive into a pydicom data set element by element and encodes it with pydicom's writer, for a
command set of about 150 bytes.  The command set is always Implicit VR Little Endian (PS3.7 6.3.1)
and holds, for a response without error details, exactly the elements written here, in this order.

:func:`answer_stores_directly` puts this encoder in front of an association's ``send_msg``; anything
it does not cover (another message, an error comment or offending element, a handler bound to
``EVT_DIMSE_SENT``, a peer whose PDUs are too small for one fragment, a non-ASCII UID) goes the
library's way.  tests/node/test_responses.py holds the bytes to the library's.

A response to a request served on the DUL thread (:mod:`~dicom_node.fastpath.inline_store`, the
common case) is also sent from there at once, as the P-DATA-TF PDU pynetdicom's DT-1 would encode
and send.  The library would queue it for the same thread's next turn: a wake-up written to and
read from a socket pair, then the state machine's Evt9 and DT-1, which leave the state at Sta6,
all before the sender has its answer.  The response waits its turn as before when it is not on
that thread, the association is not in Sta6, a PDU is already queued (it must leave first), or a
handler watches ``EVT_PDU_SENT`` (it is given the library's PDU).  The send is the association
socket's, so a closed connection queues Evt17 either way.
"""

from __future__ import annotations

import struct
import threading
from typing import TYPE_CHECKING, Any

from pynetdicom import evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA

if TYPE_CHECKING:
    from pynetdicom.association import Association
    from pynetdicom.dul import DULServiceProvider

C_STORE_RSP_COMMAND_FIELD = 0x8001
NO_DATA_SET = 0x0101
_LAST_COMMAND_FRAGMENT = b"\x03"
"""Message control header of a PDV (PS3.8 E.2): command, last fragment."""
_PDV_OVERHEAD = 6
"""Item length (4) + presentation context ID (1) + message control header (1), as pynetdicom counts."""
_DATA_TRANSFER = "Sta6"


def _uid(element: int, value: str) -> bytes:
    encoded = value.encode("ascii")
    if len(encoded) % 2:
        encoded += b"\x00"
    return struct.pack("<HHI", 0x0000, element, len(encoded)) + encoded


def _us(element: int, value: int) -> bytes:
    return struct.pack("<HHIH", 0x0000, element, 2, value)


def encode_store_response(
    message_id_being_responded_to: int,
    status: int,
    sop_class_uid: str | None,
    sop_instance_uid: str | None,
) -> bytes:
    """The Implicit VR Little Endian command set of a C-STORE-RSP; an absent UID is left out.

    Raises ``UnicodeEncodeError`` for a non-ASCII UID and ``struct.error`` for an out-of-range number.
    """
    body = b"".join((
        _uid(0x0002, sop_class_uid) if sop_class_uid else b"",
        _us(0x0100, C_STORE_RSP_COMMAND_FIELD),
        _us(0x0120, message_id_being_responded_to),
        _us(0x0800, NO_DATA_SET),
        _us(0x0900, status),
        _uid(0x1000, sop_instance_uid) if sop_instance_uid else b"",
    ))
    return struct.pack("<HHII", 0x0000, 0x0000, 4, len(body)) + body


def _plain_store_response(primitive: Any) -> bytes | None:
    """The encoded command set when ``primitive`` is a C-STORE response this module covers, else None."""
    if not isinstance(primitive, C_STORE) or primitive.MessageIDBeingRespondedTo is None:
        return None
    if primitive.Status is None or primitive.ErrorComment is not None or primitive.OffendingElement is not None:
        return None
    try:
        return encode_store_response(
            primitive.MessageIDBeingRespondedTo,
            primitive.Status,
            primitive.AffectedSOPClassUID,
            primitive.AffectedSOPInstanceUID,
        )
    except (UnicodeEncodeError, struct.error):
        return None


def answer_stores_directly(assoc: Association) -> None:
    """Send ``assoc``'s plain C-STORE responses as one PDV encoded by :func:`encode_store_response`."""
    dimse = assoc.dimse
    library_send_msg = dimse.send_msg

    def send_msg(primitive: Any, context_id: int) -> None:
        command_set = _plain_store_response(primitive)
        max_pdu = dimse.maximum_pdu_size
        if (
            command_set is None
            or assoc.get_handlers(evt.EVT_DIMSE_SENT)
            or (max_pdu and len(command_set) > max_pdu - _PDV_OVERHEAD)
        ):
            library_send_msg(primitive, context_id)
            return
        pdata = P_DATA()
        pdata.presentation_data_value_list.append((context_id, _LAST_COMMAND_FRAGMENT + command_set))
        dul, connection = dimse.dul, dimse.dul.socket
        if connection is not None and _sends_now(assoc, dul):
            connection.send(P_DATA_TF(pdata).encode())
            return
        dul.send_pdu(pdata)

    dimse.send_msg = send_msg  # type: ignore[method-assign]


def _sends_now(assoc: Association, dul: DULServiceProvider) -> bool:
    """Whether a response may skip the DUL's queue (see the module docstring)."""
    return (
        threading.current_thread() is dul
        and dul.state_machine.current_state == _DATA_TRANSFER
        and not dul.to_provider_queue.queue
        and not assoc.get_handlers(evt.EVT_PDU_SENT)
    )


__all__ = ["answer_stores_directly", "encode_store_response"]
