"""A received C-STORE data set as a DICOM Part 10 stream: preamble, ``DICM``, file meta, data set.

The bytes are those of pynetdicom's ``Event.encoded_dataset(include_meta=True)``: the file meta
values of its ``create_file_meta`` (SOP class and instance from the C-STORE command, the transfer
syntax of the presentation context, pynetdicom's implementation UID and version), in the
Explicit VR Little Endian encoding of PS3.10 7.1.  The library builds and encodes a pydicom data
set for these six elements on every instance; the group is simple enough to write directly, and
tests/node/test_part10.py holds this module to the library's bytes.
"""

from __future__ import annotations

import struct
from io import BytesIO
from typing import Any

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

from radassist.errors import RejectedInput

PREAMBLE = b"\x00" * 128 + b"DICM"
_VERSION = b"\x02\x00\x01\x00OB\x00\x00" + struct.pack("<I", 2) + b"\x00\x01"


def _element(element: int, vr: bytes, value: str, pad: bytes) -> bytes:
    encoded = value.encode("ascii")
    if len(encoded) % 2:
        encoded += pad
    return struct.pack("<HH", 0x0002, element) + vr + struct.pack("<H", len(encoded)) + encoded


def file_meta_group(sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str) -> bytes:
    """The file meta group (0002,xxxx), group length first; UIDs must be non-empty ASCII."""
    if not sop_class_uid or not sop_instance_uid or not transfer_syntax_uid:
        raise RejectedInput("the C-STORE command has no SOP class or instance UID", code="dicom.missing_uid")
    try:
        body = b"".join((
            _VERSION,
            _element(0x0002, b"UI", sop_class_uid, b"\x00"),
            _element(0x0003, b"UI", sop_instance_uid, b"\x00"),
            _element(0x0010, b"UI", transfer_syntax_uid, b"\x00"),
            _element(0x0012, b"UI", PYNETDICOM_IMPLEMENTATION_UID, b"\x00"),
            _element(0x0013, b"SH", PYNETDICOM_IMPLEMENTATION_VERSION, b" "),
        ))
    except (UnicodeEncodeError, struct.error):
        raise RejectedInput("the C-STORE command's UIDs are not valid UIDs", code="dicom.invalid_uid") from None
    return b"\x02\x00\x00\x00UL\x04\x00" + struct.pack("<I", len(body)) + body


def part10_stream(event: Any) -> bytes:
    """The Part 10 bytes of a C-STORE event's data set, as pynetdicom would give them."""
    request = event.request
    dataset: BytesIO = request.DataSet
    meta = file_meta_group(
        str(request.AffectedSOPClassUID or ""),
        str(request.AffectedSOPInstanceUID or ""),
        str(event.context.transfer_syntax or ""),
    )
    return b"".join((PREAMBLE, meta, dataset.getbuffer()))


__all__ = ["PREAMBLE", "file_meta_group", "part10_stream"]
