"""pynetdicom takes the A-ASSOCIATE-RQ the acceptor already decoded instead of decoding it again.

Before a connection reaches pynetdicom, its request is decoded, and its primitive built, by
pynetdicom's own classes (:mod:`dicom_node.association_request`), so that a request they cannot
take is refused with our A-ABORT instead of ending pynetdicom's reactor thread.  The DUL thread then
reads the same bytes, decodes them and builds the primitive a second time.  A peer that proposes
every storage class (dcmtk's storescu does by default) sends some 120 presentation contexts, and
every UID in them is built and checked against pydicom's patterns each time: the second round was
30 % of the instructions the listener executed for a one-instance association from storescu
(``bench/listener_instructions.py --each-alone``: 164.6 M before, 115.6 M after).

Here the DUL's first decode returns the PDU decoded before, when its bytes are the same and no
handler is bound to ``EVT_DATA_RECV`` or ``EVT_PDU_RECV`` (pynetdicom's decode fires them; they
would be given nothing), and that PDU gives pynetdicom the primitive built from it before.  Every
later PDU, and a first one that differs, is decoded by pynetdicom.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pynetdicom import evt

from dicom_node.association_request import DecodedRequest

if TYPE_CHECKING:
    from pynetdicom.association import Association

A_ASSOCIATE_RQ_RECEIVED = "Evt6"
"""The upper layer's event for a received A-ASSOCIATE-RQ PDU (PS3.8 Table 9-10)."""


def take_decoded_request(assoc: Association, decoded: DecodedRequest | None) -> None:
    """Let ``assoc``'s DUL take ``decoded`` as its first PDU (see the module docstring)."""
    if decoded is None:
        return
    dul = assoc.dul
    library_decode = dul._decode_pdu
    pdu, primitive = decoded.pdu, decoded.primitive

    def decode_pdu(bytestream: bytearray) -> tuple[Any, str]:
        dul._decode_pdu = library_decode  # type: ignore[method-assign]  # the first PDU only
        if (
            bytestream == decoded.data
            and not assoc.get_handlers(evt.EVT_DATA_RECV)
            and not assoc.get_handlers(evt.EVT_PDU_RECV)
        ):
            # pynetdicom builds the primitive from this PDU once (AE-6): the one built already.
            pdu.to_primitive = lambda: primitive  # type: ignore[method-assign]
            return pdu, A_ASSOCIATE_RQ_RECEIVED
        return library_decode(bytestream)

    dul._decode_pdu = decode_pdu  # type: ignore[method-assign]


__all__ = ["A_ASSOCIATE_RQ_RECEIVED", "take_decoded_request"]
