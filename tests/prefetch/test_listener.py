"""Priors that our own C-MOVE sends to our listener never reopen a study: the patient's earlier study,
drafted by us long ago, is not drafted again because it was fetched as a prior."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pydicom
from pynetdicom import AE
from sqlalchemy import select

from radassist.config import Settings
from radassist.config.priors import DicomPriorSource
from radassist.db.tables import Study
from radassist.prefetch.start import moved_prior
from radassist.states import StudyState
from tests.node.conftest import Node, start_node  # noqa: F401 -- fixture
from tests.priors.factories import make_cxr_study

MOVE_SOURCE = DicomPriorSource(name="archive", ae_title="ARCHIVE", host="127.0.0.1", port=104, retrieve="move")


def _store(node: Node, ds: pydicom.Dataset, originator: str | None) -> None:
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID))
    assoc = ae.associate("127.0.0.1", node.port, ae_title="RADASSIST")
    assert assoc.is_established
    try:
        kwargs = {"originator_aet": originator, "originator_id": 7} if originator else {}
        status = assoc.send_c_store(ds, **kwargs)
        assert status.Status == 0x0000
    finally:
        assoc.release()


def _state(node: Node, uid: str) -> StudyState:
    with node.session_factory() as session:
        state = session.scalar(select(Study.state).where(Study.study_instance_uid == uid))
    assert state is not None
    return state


def test_only_our_own_moves_of_priors_are_recognised(migrated_settings: Settings) -> None:
    settings = migrated_settings.model_copy(update={"prior_sources": (MOVE_SOURCE,)})
    assert moved_prior(settings, "RADASSIST") and moved_prior(settings, " RADASSIST ")
    assert not moved_prior(settings, "WORKSTATION") and not moved_prior(settings, None) and not moved_prior(settings, "")
    get_source = MOVE_SOURCE.model_copy(update={"retrieve": "get"})
    assert not moved_prior(settings.model_copy(update={"prior_sources": (get_source,)}), "RADASSIST")
    assert not moved_prior(migrated_settings, "RADASSIST")


def test_a_prior_moved_to_us_never_reopens_an_earlier_study(
    migrated_settings: Settings, start_node: Callable[..., Node]  # noqa: F811
) -> None:
    node = start_node(migrated_settings.model_copy(update={"prior_sources": (MOVE_SOURCE,)}))
    earlier = make_cxr_study(dt.datetime(2023, 1, 10, 14, 0))
    uid = str(earlier[0].StudyInstanceUID)
    _store(node, earlier[0], None)
    with node.session_factory() as session:  # drafted and done long ago
        session.execute(Study.__table__.update().where(Study.study_instance_uid == uid)
                        .values(state=StudyState.COMPLETE))
        session.commit()
    _store(node, earlier[1], "RADASSIST")  # the archive sending it to us as a prior (our C-MOVE)
    assert _state(node, uid) is StudyState.COMPLETE
    third = earlier[1].copy()
    third.SOPInstanceUID = third.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    _store(node, third, "WORKSTATION")  # someone else's move: a new image of a complete study reopens it
    assert _state(node, uid) is StudyState.RECEIVING
