"""Is the received data set whole?  pydicom reads a short last element (truncated pixel data) silently.

A sender that drops the connection mid-write, or a buggy modality that declares more pixel bytes
than it sends, must get a failure status, not a Success for an image nobody can open.  This walks
the top-level elements without reading large values (one ``seek`` each) and checks that every
declared length fits in what arrived.  Deflated data sets are left to the decoder, which fails
on a truncated stream anyway.

In an explicit VR data set every top-level element must name a VR.  pydicom reads an element
whose VR bytes are not letters as implicit VR and goes on, but ``dcmread`` decides from the first
element how to read the whole data set: a Study Instance UID read by the walk could vanish for
every later reader.  Inside sequences the tolerance stays (some modalities write their items in
implicit VR, pydicom issues 1035 and 1067), since the item's bounds are checked anyway.

Sequences of defined length are walked too (to a depth of ``_MAX_DEPTH``): an item that claims
more bytes than its sequence holds would make a reader swallow the elements that follow it into
the item (a Study Instance UID could vanish), so it is refused like a truncated element.
"""

from __future__ import annotations

import functools
import struct
from io import BytesIO

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.filereader import data_element_generator
from pydicom.uid import UID
from pydicom.valuerep import VR

from radassist.errors import RejectedInput

_KNOWN_VRS = frozenset(str(v) for v in VR)
_UNDEFINED = 0xFFFFFFFF
_DEFER = 256
_MAX_DEPTH = 16
_ITEM = (0xFFFE, 0xE000)
_SEQUENCE_DELIMITER = (0xFFFE, 0xE0DD)


@functools.lru_cache(maxsize=64)
def as_transfer_syntax(uid: str) -> UID:
    """``UID(uid)``, remembered: a listener's instances name a few transfer syntaxes, and building a
    ``UID`` runs pydicom's pattern check, which cost a few microseconds twice per instance."""
    return UID(uid)


def dataset_offset(encoded: bytes) -> int:
    """Where the data set starts in a Part 10 stream (after preamble, ``DICM`` and the file meta group)."""
    if len(encoded) < 144 or encoded[128:132] != b"DICM" or encoded[132:136] != b"\x02\x00\x00\x00":
        raise RejectedInput("the data set has no valid file meta", code="dicom.undecodable")
    (group_length,) = struct.unpack("<I", encoded[140:144])
    offset = 144 + int(group_length)
    if offset > len(encoded):
        raise RejectedInput("the file meta group is truncated", code="dicom.truncated")
    return offset


def check_complete(
    encoded: bytes, transfer_syntax: str, collect: frozenset[int] = frozenset()
) -> dict[int, RawDataElement]:
    """Raise :class:`RejectedInput` (``dicom.truncated``) when an element runs past the end of the data.

    Returns the top-level elements whose tags are in ``collect``, as the walk met them, so that the
    header reader does not walk the data set a second time (:func:`radassist.intake.header.parse_header`).
    A value longer than 256 bytes is not read (its ``value`` is None): it is at ``value_tell`` in
    ``encoded``.  Nothing is collected for a deflated data set.
    """
    ts = as_transfer_syntax(transfer_syntax)
    found: dict[int, RawDataElement] = {}
    if ts == "1.2.840.10008.1.2.1.99" or not ts.is_transfer_syntax:
        return found  # deflated (decoder checks it) or unknown (already refused by negotiation)
    offset = dataset_offset(encoded)
    _check_elements(encoded, offset, ts, 0, collect, found)
    return found


def _check_elements(
    data: bytes,
    offset: int,
    ts: UID,
    depth: int,
    collect: frozenset[int] = frozenset(),
    found: dict[int, RawDataElement] | None = None,
) -> None:
    """Every element from ``offset`` to the end of ``data`` (a data set or one item's value) fits in it;
    the elements tagged in ``collect`` go into ``found``."""
    total = len(data)
    fp = BytesIO(data)
    fp.seek(offset)
    end = offset
    implicit = ts.is_implicit_VR  # a UID property that parses the UID: once, not per element
    try:
        for element in data_element_generator(fp, implicit, ts.is_little_endian, defer_size=_DEFER):
            length = getattr(element, "length", None)
            tell = getattr(element, "value_tell", None)
            vr = getattr(element, "VR", None)
            if not implicit and _invalid_explicit_vr(vr, depth):
                raise RejectedInput("the data set holds an element with an invalid VR", code="dicom.invalid_vr")
            if found is not None and element.tag in collect and isinstance(element, RawDataElement):
                found[element.tag] = element
            if length is None or tell is None or length == _UNDEFINED:
                continue
            end = max(end, tell + length)
            if _is_sequence(element, vr) and tell + length <= total and depth < _MAX_DEPTH:
                _check_items(data[tell : tell + length], ts, depth + 1)
    except RejectedInput:
        raise
    except Exception:  # noqa: BLE001 - a malformed stream; the library message may quote the data
        raise RejectedInput("the data set is malformed or truncated", code="dicom.truncated") from None
    if end > total:
        raise RejectedInput("the data set is shorter than its elements declare", code="dicom.truncated")


def _invalid_explicit_vr(vr: object, depth: int) -> bool:
    """An unknown VR anywhere; no VR at all only at the top level (see the module docstring)."""
    if vr is None:
        return depth == 0
    return str(vr) not in _KNOWN_VRS


def _is_sequence(element: object, vr: object) -> bool:
    if vr is not None:
        return str(vr) == "SQ"
    try:  # implicit VR: the dictionary says
        return bool(dictionary_VR(getattr(element, "tag", 0)) == "SQ")
    except KeyError:
        return False


def _check_items(value: bytes, ts: UID, depth: int) -> None:
    """The items of a defined-length sequence: each one inside the sequence, and its elements inside it.

    An undefined-length item ends the check of this sequence (its end is found by its delimiter,
    which the reader already requires).
    """
    fmt = "<HHI" if ts.is_little_endian else ">HHI"
    pos = 0
    while pos < len(value):
        if len(value) - pos < 8:
            raise RejectedInput("a sequence ends inside an item header", code="dicom.truncated")
        group, elem, length = struct.unpack_from(fmt, value, pos)
        if (group, elem) == _SEQUENCE_DELIMITER:
            return
        if (group, elem) != _ITEM:
            raise RejectedInput("a sequence holds something other than items", code="dicom.truncated")
        pos += 8
        if length == _UNDEFINED:
            return
        if pos + length > len(value):
            raise RejectedInput("an item runs past the end of its sequence", code="dicom.truncated")
        _check_elements(value[pos : pos + length], 0, ts, depth)
        pos += length
