"""pynetdicom takes the A-ASSOCIATE-RQ the acceptor decoded (dicom_node.fastpath.first_request): each
association's request is decoded once, and what pynetdicom is given is what its own decode makes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pynetdicom import evt
from pynetdicom.pdu import A_ASSOCIATE_RQ

from dicom_node.association_request import DecodedRequest
from dicom_node.fastpath.first_request import A_ASSOCIATE_RQ_RECEIVED, take_decoded_request
from radassist.config import Settings
from tests.node.conftest import Node
from tests.node.corpus import associate_rq
from tests.peers import STORESCU


def _summary(primitive: Any) -> tuple[Any, ...]:
    return (
        primitive.calling_ae_title,
        primitive.called_ae_title,
        primitive.application_context_name,
        [(c.context_id, c.abstract_syntax, c.transfer_syntax) for c in primitive.presentation_context_definition_list],
        primitive.maximum_length_received,
        primitive.implementation_class_uid,
    )


def test_the_decoded_request_is_what_pynetdicom_decodes() -> None:
    data = associate_rq(calling=b"CT_SCANNER")
    library = A_ASSOCIATE_RQ()
    library.decode(data)

    decoded = DecodedRequest.of(data)

    assert decoded.data == data
    assert type(decoded.pdu) is A_ASSOCIATE_RQ
    assert decoded.pdu.encode() == library.encode() == data
    assert _summary(decoded.primitive) == _summary(library.to_primitive())


class _Dul:
    def __init__(self) -> None:
        self.decoded_by_library: list[bytes] = []

    def _decode_pdu(self, bytestream: bytearray) -> tuple[Any, str]:
        self.decoded_by_library.append(bytes(bytestream))
        return "decoded by the library", "Evt?"


def _association(handlers: dict[Any, list[Any]] | None = None) -> Any:
    return SimpleNamespace(dul=_Dul(), get_handlers=lambda event: (handlers or {}).get(event, []))


def test_the_first_pdu_is_the_decoded_request_and_the_next_are_decoded() -> None:
    data = associate_rq()
    decoded, assoc = DecodedRequest.of(data), _association()
    take_decoded_request(assoc, decoded)

    assert assoc.dul._decode_pdu(bytearray(data)) == (decoded.pdu, A_ASSOCIATE_RQ_RECEIVED)
    assert decoded.pdu.to_primitive() is decoded.primitive  # what pynetdicom's AE-6 asks for: built once
    assert assoc.dul._decode_pdu(bytearray(data)) == ("decoded by the library", "Evt?")
    assert assoc.dul.decoded_by_library == [data]


@pytest.mark.parametrize(
    ("first", "handlers"),
    [
        (associate_rq(calling=b"OTHER"), None),  # not the bytes that were decoded
        (associate_rq(), {evt.EVT_PDU_RECV: [(print, None)]}),
        (associate_rq(), {evt.EVT_DATA_RECV: [(print, None)]}),
    ],
    ids=["other bytes", "EVT_PDU_RECV handler", "EVT_DATA_RECV handler"],
)
def test_otherwise_pynetdicom_decodes_the_first_pdu(first: bytes, handlers: dict[Any, list[Any]] | None) -> None:
    assoc = _association(handlers)
    take_decoded_request(assoc, DecodedRequest.of(associate_rq()))
    assert assoc.dul._decode_pdu(bytearray(first)) == ("decoded by the library", "Evt?")
    assert assoc.dul.decoded_by_library == [first]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "stock pynetdicom"])
def test_a_live_association_decodes_its_request_once(
    migrated_settings: Settings,
    start_node: Callable[..., Node],
    testdata: Path,
    monkeypatch: pytest.MonkeyPatch,
    fast_path: bool,
) -> None:
    """Two associations from dcmtk's storescu, which proposes every storage class: each request is
    decoded once on the fast path, twice (our check, then pynetdicom) without it; both are stored."""
    decodes: list[int] = []
    library_decode = A_ASSOCIATE_RQ.decode

    def counting(self: A_ASSOCIATE_RQ, bytestream: bytes) -> None:
        decodes.append(len(bytestream))
        library_decode(self, bytestream)

    monkeypatch.setattr(A_ASSOCIATE_RQ, "decode", counting)
    node = start_node(migrated_settings, pynetdicom_fast_path=fast_path)
    instance = testdata / "pydicom-data" / "JPGLosslessP14SV1_1s_1f_8b.dcm"
    for _ in range(2):
        result = subprocess.run(
            [STORESCU, "-xs", "-aet", "MODALITY", "-aec", "RADASSIST", "127.0.0.1", str(node.port), str(instance)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert node.counters.instances_stored == 1 and node.counters.instances_duplicate == 1
    assert len(decodes) == (2 if fast_path else 4)
    assert min(decodes) > 5000  # storescu's request: some 120 presentation contexts
