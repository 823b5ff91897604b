"""The hostile DICOM corpus: data sets for C-STORE and raw PDU conversations, generated (no blobs).

It extends :mod:`tests.node.corpus` (whose cases are all included here, sent through the same
path) with cases that need a hand-written client (:mod:`tests.badinput.rawdicom`): commands whose
UIDs carry path characters, a C-STORE whose SOP class is not the presentation context's, deflated
and big-endian streams that do not decode, and PDU sequences no library would produce.

A data-set case is sent as one C-STORE on a freshly negotiated association and must get a failure
status (or an abort); a PDU case is a conversation on a fresh TCP connection after which the node
must still serve everyone else.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.uid import generate_uid

from radassist.intake.structure import dataset_offset
from tests.badinput import rawdicom as raw
from tests.badinput.rawdicom import Context
from tests.node.corpus import CT, DATASET_CASES, PDU_CASES, SC, _body, _el

DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


@dataclass(frozen=True)
class StoreCase:
    """One C-STORE: the context it goes on, what the command claims, and the data set bytes."""

    context: Context
    sop_class: str
    sop_instance: str
    data: bytes
    command_only: bool = False
    """Send the command with "no data set follows" (CommandDataSetType 0101H)."""
    may_go_unanswered: bool = False
    """pynetdicom drops a request missing a required command element without answering (the
    handler never runs); the sender's DIMSE timeout ends it.  Only such cases may see no reply."""


def _from_node_corpus(build: Callable[[], tuple[str, bytes]]) -> Callable[[], StoreCase]:
    """A tests/node/corpus case (a Part 10 file with sound meta) as the C-STORE pynetdicom would send."""

    def make() -> StoreCase:
        uid, file_bytes = build()
        return StoreCase(Context(1, SC), SC, uid, file_bytes[dataset_offset(file_bytes) :])

    return make


def _store(
    body: Callable[[str], bytes],
    *,
    context: str = SC,
    syntax: str = raw.EXPLICIT_LE,
    command_class: str = SC,
    instance: str | None = None,
) -> Callable[[], StoreCase]:
    def make() -> StoreCase:
        uid = instance if instance is not None else generate_uid()
        return StoreCase(Context(1, context, (syntax,)), command_class, uid, body(uid))

    return make


def _nested_sequences(depth: int) -> bytes:
    """``depth`` undefined-length sequences, each in an undefined-length item of the one above."""
    opening = (struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF))
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return opening * depth + closing * depth


def _implicit(tag: tuple[int, int], value: bytes) -> bytes:
    return struct.pack("<HHI", tag[0], tag[1], len(value)) + value


def _big_endian_body(uid: str) -> bytes:
    """A data set with the right UIDs, encoded little endian but sent on a big endian context."""
    return _body(uid)


def _deflated(uid: str, keep: float = 1.0) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = packer.compress(_body(uid)) + packer.flush()
    return stream[: int(len(stream) * keep)]


PATH_UIDS = {
    "dotdot": "../../../../etc/passwd",
    "absolute": "/etc/passwd",
    "slash": "1.2.840/10008.1",
    "backslash": "1.2.840\\..\\..\\x",
    "windows": "..\\..\\windows\\win.ini",
    "nul": "1.2.3\x00/../x",
}

#: name -> builder of a :class:`StoreCase`; every one must be refused (never Success).
STORE_CASES: dict[str, Callable[[], StoreCase]] = {
    **{f"node_corpus/{name}": _from_node_corpus(build) for name, build in DATASET_CASES.items()},
    # UIDs with path characters, in the command and the data set alike (so only the UID check stops them)
    **{f"sop_instance_uid_{kind}": _store(lambda u: _body(u), instance=value) for kind, value in PATH_UIDS.items()},
    "study_uid_absolute_path": _store(lambda u: _body(u, study="/etc/passwd")),
    "series_uid_backslash": _store(lambda u: _body(u, series="1.2\\..\\3")),
    "sop_instance_uid_65_chars": _store(lambda u: _body(u), instance="1." + "2" * 63),
    "sop_instance_uid_high_bytes": _store(lambda u: _body(u), instance="1.2.\xff\xfe.3"),
    "command_sop_instance_empty": lambda: StoreCase(Context(1, SC), SC, "", _body(generate_uid()), may_go_unanswered=True),
    # SOP class: the data set, the command and the presentation context must agree
    "ct_data_set_and_command_on_sc_context": _store(lambda u: _body(u, sop_class=CT), command_class=CT),
    "sc_data_set_ct_command_on_sc_context": _store(lambda u: _body(u), command_class=CT),
    "store_on_verification_context": _store(lambda u: _body(u), context=raw.VERIFICATION),
    "sop_class_uid_with_letters": _store(lambda u: _body(u, sop_class="1.2.840.x.5"), command_class="1.2.840.x.5"),
    "missing_every_uid": _store(lambda u: _body(u, sop_class=None, study=None, series=None, instance=None)),
    # lengths
    "huge_pixel_length_0xfffffff0": _store(lambda u: _body(u, pixels=_el(0x7FE0, 0x0010, b"OB", b"\x00" * 16, length=0xFFFFFFF0))),
    "short_vr_length_0xffff": _store(lambda u: _body(u, extra=struct.pack("<HH2sH", 0x0008, 0x103E, b"LO", 0xFFFF) + b"AB")),
    "sequence_item_longer_than_sequence": _store(lambda u: _body(u, pixels=struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 16) + struct.pack("<HHI", 0xFFFE, 0xE000, 4000) + b"\x00" * 8)),
    "item_tag_at_top_level": _store(lambda u: _body(u, pixels=struct.pack("<HHI", 0xFFFE, 0xE000, 0x7FFFFFF0))),
    "encapsulated_pixels_without_delimiter": _store(
        lambda u: _body(u, pixels=struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000, 0) + struct.pack("<HHI", 0xFFFE, 0xE000, 64) + b"\xff\xd8" * 8),
        syntax=JPEG_BASELINE,
    ),
    "deeply_nested_sequences_unterminated": _store(lambda u: _body(u, pixels=_nested_sequences(3000)[: 3000 * 20])),
    "one_byte_data_set": _store(lambda u: b"\x08"),
    "sequence_ending_inside_item_header": _store(lambda u: _body(u, pixels=struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 4) + b"\xfe\xff\x00\xe0")),
    "nested_item_longer_than_its_sequence": _store(lambda u: _body(u, extra=struct.pack("<HH2sHI", 0x0008, 0x1115, b"SQ", 0, 8 + 26) + struct.pack("<HHI", 0xFFFE, 0xE000, 26) + struct.pack("<HH2sHI", 0x0008, 0x114A, b"SQ", 0, 10) + struct.pack("<HHI", 0xFFFE, 0xE000, 500) + b"\x00\x00")),
    # encodings the context does not describe
    "little_endian_bytes_on_big_endian_context": _store(_big_endian_body, syntax=EXPLICIT_BE),
    "explicit_bytes_on_implicit_context": _store(lambda u: _body(u), syntax=raw.IMPLICIT_LE),
    "garbage_on_deflated_context": _store(lambda u: bytes(range(256)) * 4, syntax=DEFLATED_LE),
    "truncated_deflate_stream": _store(lambda u: _deflated(u, keep=0.5), syntax=DEFLATED_LE),
    "undeflated_bytes_on_deflated_context": _store(lambda u: _body(u), syntax=DEFLATED_LE),
    # the command itself
    "c_store_without_data_set": lambda: StoreCase(Context(1, SC), SC, generate_uid(), b"", command_only=True),
}


def _after_association(*pdus: bytes, contexts: list[Context] | None = None) -> list[bytes]:
    return [raw.associate_rq(contexts or [Context(1, raw.VERIFICATION), Context(3, SC)]), *pdus]


_STORE_CMD = raw.fragments(3, raw.c_store_rq(SC, "1.2.3.4"), command=True)

#: name -> (PDUs written one after another on a fresh connection, reading replies in between,
#: and whether the node must refuse: abort, reject or close).  "any" cases are legal but odd:
#: whatever the node answers, it must not crash and must keep serving.
PDU_SEQUENCES: dict[str, tuple[list[bytes], str]] = {
    **{f"node_corpus/{name}": ([payload], "any") for name, payload in PDU_CASES.items()},
    "pdu_length_larger_than_sent": ([raw.associate_rq()[:-20]], "any"),
    "pdu_header_only_claiming_1mb": ([raw.pdu(raw.A_ASSOCIATE_RQ, b"", length=1 << 20)], "any"),
    "zero_length_pdata_before_association": ([raw.pdu(raw.P_DATA_TF, b"")], "refuse"),
    "zero_length_abort": ([raw.pdu(raw.A_ABORT, b"")], "any"),
    "associate_ac_sent_to_the_node": ([raw.pdu(raw.A_ASSOCIATE_AC, raw.associate_rq()[6:])], "refuse"),
    "associate_rj_sent_to_the_node": ([raw.pdu(raw.A_ASSOCIATE_RJ, b"\x00\x01\x01\x01")], "refuse"),
    "rq_max_pdu_0xffffffff_then_echo": ([raw.associate_rq(max_pdu=0xFFFFFFFF), raw.fragments(1, raw.c_echo_rq(), command=True)], "any"),
    "rq_max_pdu_1_then_echo": ([raw.associate_rq(max_pdu=1), raw.fragments(1, raw.c_echo_rq(), command=True)], "any"),
    "rq_max_pdu_7_then_echo": ([raw.associate_rq(max_pdu=7), raw.fragments(1, raw.c_echo_rq(), command=True)], "any"),
    "rq_max_pdu_0_then_echo": ([raw.associate_rq(max_pdu=0), raw.fragments(1, raw.c_echo_rq(), command=True)], "any"),
    "rq_no_presentation_contexts": ([raw.associate_rq([])], "refuse"),
    "rq_even_and_duplicate_context_ids": ([raw.associate_rq([Context(2, raw.VERIFICATION), Context(2, SC), Context(2, CT)])], "any"),
    "rq_128_contexts": ([raw.associate_rq([Context(i, SC) for i in range(1, 256, 2)])], "any"),
    "rq_abstract_syntax_300_bytes": ([raw.associate_rq([Context(1, "1.2." + "3" * 296)])], "any"),
    "rq_no_transfer_syntax": ([raw.associate_rq([Context(1, raw.VERIFICATION, ())])], "refuse"),
    "rq_protocol_version_0": ([raw.associate_rq(protocol=0)], "any"),
    "rq_called_ae_not_ours": ([raw.associate_rq(called=b"NOTUS")], "refuse"),
    "rq_calling_ae_not_allowed": ([raw.associate_rq(calling=b"INTRUDER")], "refuse"),
    "rq_ae_titles_high_bytes": ([raw.associate_rq(called=b"\xff\xfe" * 8, calling=b"\x00\x9b" * 8)], "refuse"),
    "rq_without_user_information": ([raw.associate_rq(user_info=b"")], "any"),
    "rq_implementation_uid_65000_bytes": ([raw.associate_rq(user_info=raw.item(0x50, raw.item(0x51, struct.pack(">I", 16384)) + raw.item(0x52, b"1" * 65000)))], "any"),
    "rq_context_item_length_lie": ([raw.associate_rq(raw_contexts=b"\x20\x00\xff\xff\x01\x00\x00\x00")], "any"),
    "second_rq_after_association": (_after_association(raw.associate_rq()), "refuse"),
    "zero_length_pdata_after_association": (_after_association(raw.pdu(raw.P_DATA_TF, b"")), "any"),
    "zero_length_release_rq": (_after_association(raw.pdu(raw.A_RELEASE_RQ, b"")), "any"),
    "pdv_length_zero": (_after_association(raw.p_data(raw.pdv(1, b"", command=True, length=0))), "any"),
    "pdv_length_past_pdu": (_after_association(raw.p_data(raw.pdv(1, raw.c_echo_rq(), command=True, length=0xFFFF))), "refuse"),
    "pdv_for_unknown_context": (_after_association(raw.fragments(99, raw.c_echo_rq(), command=True)), "refuse"),
    "data_fragment_before_command": (_after_association(raw.fragments(3, b"\x08\x00\x16\x00", command=False)), "any"),
    "garbage_command_set": (_after_association(raw.fragments(1, bytes(range(200)), command=True)), "any"),
    "unknown_command_field": (_after_association(raw.fragments(1, raw.command_set([(0x0002, b"1.2.840.10008.1.1\x00"), (0x0100, struct.pack("<H", 0x0FFF)), (0x0110, b"\x01\x00"), (0x0800, b"\x01\x01")]), command=True)), "any"),
    "c_store_then_release_before_data": (_after_association(_STORE_CMD, raw.RELEASE_RQ), "any"),
    "c_store_then_abort_mid_data": (_after_association(_STORE_CMD + raw.p_data(raw.pdv(3, _body("1.2.3.4")[:40], command=False, last=False)), raw.ABORT), "any"),
    "c_store_then_close_mid_data": (_after_association(_STORE_CMD + raw.p_data(raw.pdv(3, _body("1.2.3.4")[:40], command=False, last=False))), "any"),
    "pdata_length_0xffffffff_after_association": (_after_association(raw.pdu(raw.P_DATA_TF, b"\x00" * 64, length=0xFFFFFFFF)), "any"),
}
