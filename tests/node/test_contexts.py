"""Each association's supported presentation contexts are its own, copied without rebuilding their
UIDs (dicom_node.fastpath.contexts): what pynetdicom's ``deepcopy`` promised, at a fraction of its cost."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext, build_context

from dicom_node import fastpath
from dicom_node.fastpath.contexts import SharedUidContexts
from radassist.config import Settings
from tests.conftest import wait_until
from tests.node.conftest import Node

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"


def test_a_copy_has_contexts_and_lists_of_its_own_and_the_same_uids() -> None:
    server_contexts = SharedUidContexts([build_context(CT_IMAGE, [EXPLICIT_LE, IMPLICIT_LE])])
    [original] = server_contexts
    original.scp_role = True

    [twin] = copy.deepcopy(server_contexts)

    assert twin is not original and twin._transfer_syntax is not original._transfer_syntax
    assert twin.abstract_syntax is original.abstract_syntax
    assert all(a is b for a, b in zip(twin.transfer_syntax, original.transfer_syntax, strict=True))
    assert (twin.context_id, twin.scp_role, twin.scu_role) == (original.context_id, True, None)
    twin.context_id = 1
    twin.transfer_syntax = [IMPLICIT_LE]
    assert original.context_id is None and original.transfer_syntax == [EXPLICIT_LE, IMPLICIT_LE]



def test_a_pynetdicom_whose_contexts_keep_their_transfer_syntaxes_elsewhere_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The copy sets ``_transfer_syntax``: a release without it stops the fast path at start, instead
    of failing every association."""
    library_init = PresentationContext.__init__

    def without_the_list(self: PresentationContext) -> None:
        library_init(self)
        del self._transfer_syntax

    monkeypatch.setattr(PresentationContext, "__init__", without_the_list)
    assert fastpath.check_compatible() == ["pynetdicom.presentation.PresentationContext()._transfer_syntax"]


@contextmanager
def _associated(node: Node) -> Iterator[tuple[Association, Association]]:
    """A pynetdicom requestor's association with ``node`` and the listener's side of it."""
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(CT_IMAGE, EXPLICIT_LE)
    before = set(node.server.active_associations)
    requestor = ae.associate("127.0.0.1", node.port, ae_title="RADASSIST")
    try:
        assert requestor.is_established
        wait_until(lambda: len(set(node.server.active_associations) - before) == 1)
        [acceptor] = set(node.server.active_associations) - before
        yield requestor, acceptor
    finally:
        requestor.release()


def test_each_association_gets_its_own_contexts_sharing_the_servers_uids(
    migrated_settings: Settings, start_node: Callable[..., Node]
) -> None:
    node = start_node(migrated_settings, pynetdicom_fast_path=True)
    ct_path = get_testdata_file("CT_small.dcm")  # explicit VR little endian
    assert isinstance(ct_path, str)
    ct = pydicom.dcmread(ct_path)

    with _associated(node) as (first, first_side), _associated(node) as (_second, second_side):
        assert isinstance(node.server.contexts, SharedUidContexts)
        by_class = {context.abstract_syntax: context for context in node.server.contexts}
        for side in (first_side, second_side):
            contexts = side.acceptor.supported_contexts
            assert len(contexts) == len(by_class)
            for context in contexts:
                shared = by_class[context.abstract_syntax]
                assert context is not shared and context._transfer_syntax is not shared._transfer_syntax
                assert context.abstract_syntax is shared.abstract_syntax
                assert context.transfer_syntax == shared.transfer_syntax
        assert {id(c) for c in first_side.acceptor.supported_contexts}.isdisjoint(
            id(c) for c in second_side.acceptor.supported_contexts
        )
        assert int(first.send_c_store(ct).Status) == 0x0000  # the negotiated context serves

    assert node.counters.instances_stored == 1
