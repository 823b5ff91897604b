"""Is the received data set whole?  pydicom reads a short last element (truncated pixel data) silently.

A sender that drops the connection mid-write, or a buggy modality that declares more pixel bytes
than it sends, must get a failure status, not a Success for an image nobody can open.  This walks
the top-level elements without reading large values (one ``seek`` each) and checks that every
declared length fits in what arrived.  Deflated data sets are left to the decoder, which fails
on a truncated stream anyway.
"""

from __future__ import annotations

import struct
from io import BytesIO

from pydicom.filereader import data_element_generator
from pydicom.uid import UID
from pydicom.valuerep import VR

from radassist.errors import RejectedInput

_KNOWN_VRS = frozenset(str(v) for v in VR)
_UNDEFINED = 0xFFFFFFFF
_DEFER = 256


def dataset_offset(encoded: bytes) -> int:
    """Where the data set starts in a Part 10 stream (after preamble, ``DICM`` and the file meta group)."""
    if len(encoded) < 144 or encoded[128:132] != b"DICM" or encoded[132:136] != b"\x02\x00\x00\x00":
        raise RejectedInput("the data set has no valid file meta", code="dicom.undecodable")
    (group_length,) = struct.unpack("<I", encoded[140:144])
    offset = 144 + int(group_length)
    if offset > len(encoded):
        raise RejectedInput("the file meta group is truncated", code="dicom.truncated")
    return offset


def check_complete(encoded: bytes, transfer_syntax: str) -> None:
    """Raise :class:`RejectedInput` (``dicom.truncated``) when an element runs past the end of the data."""
    ts = UID(transfer_syntax)
    if ts == "1.2.840.10008.1.2.1.99" or not ts.is_transfer_syntax:
        return  # deflated (decoder checks it) or unknown (already refused by negotiation)
    offset = dataset_offset(encoded)
    total = len(encoded)
    fp = BytesIO(encoded)
    fp.seek(offset)
    end = offset
    try:
        for element in data_element_generator(fp, ts.is_implicit_VR, ts.is_little_endian, defer_size=_DEFER):
            length = getattr(element, "length", None)
            tell = getattr(element, "value_tell", None)
            vr = getattr(element, "VR", None)
            if vr is not None and not ts.is_implicit_VR and str(vr) not in _KNOWN_VRS:
                raise RejectedInput("the data set holds an element with an invalid VR", code="dicom.invalid_vr")
            if length is None or tell is None or length == _UNDEFINED:
                continue
            end = max(end, tell + length)
    except RejectedInput:
        raise
    except Exception:  # noqa: BLE001 - a malformed stream; the library message may quote the data
        raise RejectedInput("the data set is malformed or truncated", code="dicom.truncated") from None
    if end > total:
        raise RejectedInput("the data set is shorter than its elements declare", code="dicom.truncated")
