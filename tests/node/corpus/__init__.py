"""A corpus of malformed inputs, generated (no binary blobs): data sets for C-STORE and raw PDU streams.

Each data-set case is (name, file bytes): a Part 10 file whose meta is sound (so pynetdicom's SCU
sends it as is, chunked, with the command's UIDs from the meta) and whose data set is broken in one
way.  Each PDU case is (name, bytes) written straight to a TCP socket.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from io import BytesIO

from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

SC = "1.2.840.10008.5.1.4.1.1.7"
CT = "1.2.840.10008.5.1.4.1.1.2"


def _el(group: int, elem: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    """One explicit VR little endian element, with an optional lie about its length."""
    n = len(value) if length is None else length
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"OF", b"UC", b"UR", b"OD", b"OL", b"OV"):
        return struct.pack("<HH2sHI", group, elem, vr, 0, n) + value
    return struct.pack("<HH2sH", group, elem, vr, n & 0xFFFF) + value


def _ui(value: str) -> bytes:
    raw = value.encode("ascii", "replace")
    return raw + (b"\x00" if len(raw) % 2 else b"")


def _text(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + (b" " if len(raw) % 2 else b"")


def _meta(sop_uid: str, sop_class: str = SC, ts: str = ExplicitVRLittleEndian) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.9.7433.1"
    out = BytesIO()
    out.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=True)  # type: ignore[arg-type]
    return out.getvalue()


def _body(
    sop_uid: str,
    *,
    sop_class: str | None = SC,
    study: str | None = "auto",
    series: str | None = "auto",
    instance: str | None = "same",
    pixels: bytes = _el(0x7FE0, 0x0010, b"OW", b"\x00\x01" * 32),
    extra: bytes = b"",
) -> bytes:
    parts = []
    if sop_class is not None:
        parts.append(_el(0x0008, 0x0016, b"UI", _ui(sop_class)))
    if instance is not None:
        parts.append(_el(0x0008, 0x0018, b"UI", _ui(sop_uid if instance == "same" else instance)))
    parts.append(_el(0x0008, 0x0060, b"CS", _text("OT")))
    parts.append(_el(0x0010, 0x0010, b"PN", _text("SENTINEL^CORPUS")))
    if study is not None:
        parts.append(_el(0x0020, 0x000D, b"UI", _ui(generate_uid() if study == "auto" else study)))
    if series is not None:
        parts.append(_el(0x0020, 0x000E, b"UI", _ui(generate_uid() if series == "auto" else series)))
    parts.append(extra)
    parts.append(pixels)
    return b"".join(parts)


def _case(build: Callable[[str], bytes], sop_class: str = SC) -> Callable[[], tuple[str, bytes]]:
    def make() -> tuple[str, bytes]:
        uid = generate_uid()
        return uid, _meta(uid, sop_class) + build(uid)

    return make


def valid_file() -> tuple[str, bytes]:
    """A well-formed control case, built the same way: it must be stored."""
    return _case(lambda u: _body(u))()


#: name -> builder of (sop instance uid, whole file bytes); every one must be refused.
DATASET_CASES: dict[str, Callable[[], tuple[str, bytes]]] = {
    "truncated_half": _case(lambda u: _body(u)[: len(_body(u)) // 2]),
    "truncated_pixel_data": _case(lambda u: _body(u, pixels=_el(0x7FE0, 0x0010, b"OW", b"\x00" * 10, length=1000))),
    "huge_element_length": _case(lambda u: _body(u, extra=_el(0x0018, 0x0015, b"UT", b"AB", length=0xFFFFFFF0))),
    "huge_pixel_length": _case(lambda u: _body(u, pixels=_el(0x7FE0, 0x0010, b"OB", b"\x00" * 16, length=0x7FFFFFF0))),
    "invalid_vr": _case(lambda u: _body(u, extra=struct.pack("<HH2sH", 0x0018, 0x0015, b"ZZ", 4) + b"ABCD")),
    # Found by the fuzzer: an explicit VR walk takes a VR that is not letters as one implicit
    # element and goes on, but dcmread then reads the whole data set as implicit VR (no UIDs).
    "first_element_without_vr": _case(lambda u: struct.pack("<HH2sH", 0x0008, 0x0005, b"\x00\x00", 0) + _body(u)),
    "undefined_length_text": _case(lambda u: _body(u, extra=struct.pack("<HH2sHI", 0x0018, 0x0015, b"UT", 0, 0xFFFFFFFF) + b"AB")),
    "unterminated_sequence": _case(lambda u: _body(u, pixels=struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF))),
    "missing_sop_instance_uid": _case(lambda u: _body(u, instance=None)),
    "missing_study_uid": _case(lambda u: _body(u, study=None)),
    "missing_series_uid": _case(lambda u: _body(u, series=None)),
    "missing_sop_class_uid": _case(lambda u: _body(u, sop_class=None)),
    "sop_class_mismatch": _case(lambda u: _body(u, sop_class=CT)),
    "sop_instance_mismatch": _case(lambda u: _body(u, instance=generate_uid())),
    "study_uid_with_path": _case(lambda u: _body(u, study="../../../etc/passwd")),
    "series_uid_with_nul_and_slash": _case(lambda u: _body(u, series="1.2/3\x004")),
    "study_uid_too_long": _case(lambda u: _body(u, study="1." + "2" * 120)),
    "study_uid_letters": _case(lambda u: _body(u, study="1.2.abc.4")),
    "study_uid_empty": _case(lambda u: _body(u, study="")),
    "empty_data_set": _case(lambda u: b""),
    "garbage_data_set": _case(lambda u: bytes(range(256)) * 8),
    "implicit_bytes_in_explicit_context": _case(
        lambda u: struct.pack("<HHI", 0x0008, 0x0016, len(_ui(SC))) + _ui(SC) + struct.pack("<HHI", 0x0008, 0x0018, len(_ui(u))) + _ui(u)
    ),
    "element_length_past_end_of_header": _case(lambda u: _body(u, pixels=b"") + _el(0x0020, 0x0013, b"IS", b"1 ", length=200)[:10]),
    "file_meta_only_in_data_set": _case(lambda u: _meta(u)[132:]),
}


def associate_rq(called: bytes = b"RADASSIST", calling: bytes = b"MODALITY") -> bytes:
    """A minimal, valid A-ASSOCIATE-RQ proposing Verification (PS3.8 9.3.2)."""

    def item(kind: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", kind, 0, len(payload)) + payload

    app = item(0x10, b"1.2.840.10008.3.1.1.1")
    pc = item(0x20, struct.pack(">BBBB", 1, 0, 0, 0) + item(0x30, b"1.2.840.10008.1.1") + item(0x40, b"1.2.840.10008.1.2"))
    user = item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.826.0.1.3680043.9.7433.1"))
    variable = app + pc + user
    header = struct.pack(">HH16s16s32s", 1, 0, called.ljust(16), calling.ljust(16), b"\x00" * 32)
    body = header + variable
    return struct.pack(">BBI", 0x01, 0, len(body)) + body


#: name -> bytes written on a fresh TCP connection; the node must abort or ignore, and keep serving.
PDU_CASES: dict[str, bytes] = {
    "garbage_instead_of_rq": bytes(range(256)) * 4,
    "rq_then_garbage": associate_rq() + b"\xde\xad\xbe\xef" * 64,
    "rq_then_pdata_with_bad_lengths": associate_rq() + struct.pack(">BBI", 0x04, 0, 12) + struct.pack(">IB", 0xFFFF, 1) + b"\x00" * 7,
    "truncated_rq": associate_rq()[:40],
    "rq_with_huge_length": struct.pack(">BBI", 0x01, 0, 0xFFFFFFF0) + associate_rq()[6:],
    "rq_with_bad_item_lengths": associate_rq()[:74] + b"\x10\x00\xff\xff" + b"1.2",
    "pdata_before_association": struct.pack(">BBI", 0x04, 0, 6) + b"\x00\x00\x00\x02\x01\x03",
    "unknown_pdu_type": struct.pack(">BBI", 0x09, 0, 4) + b"\x00" * 4,
    "release_before_association": struct.pack(">BBI", 0x05, 0, 4) + b"\x00" * 4,
    "abort_right_after_rq": associate_rq() + struct.pack(">BBIBBBB", 0x07, 0, 4, 0, 0, 0, 0),
    "zero_length_rq": struct.pack(">BBI", 0x01, 0, 0),
    "rq_with_long_ae_titles_and_no_items": struct.pack(">BBI", 0x01, 0, 68) + struct.pack(">HH16s16s32s", 1, 0, b"\xff" * 16, b"\x00" * 16, b"\x00" * 32),
}
