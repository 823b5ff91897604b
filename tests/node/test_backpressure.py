"""Back-pressure: below the free-disk threshold, associations are refused (transient) and stores get 0xA700."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pydicom
from pynetdicom import AE
from sqlalchemy import select

from dicom_node.statuses import StoreStatus
from radassist.config import Settings
from radassist.db.tables import Association, Event, Instance, NodeStatus
from tests.node.conftest import Node
from tests.node.dcmtk import echo, output, send

ABOVE_ANY_DISK = 10**18


def test_low_disk_refuses_associations_and_says_why(
    migrated_settings: Settings, start_node: Callable[..., Node], testdata: Path
) -> None:
    storage = migrated_settings.storage.model_copy(update={"min_free_bytes": ABOVE_ANY_DISK})
    node = start_node(migrated_settings.model_copy(update={"storage": storage}))
    result = send(node.port, testdata / "pydicom-data" / "RG1_J2KR.dcm")
    assert result.returncode != 0
    assert "Rejected Transient" in output(result), output(result)
    assert "Rejected Transient" in output(echo(node.port))
    with node.session_factory() as session:
        assert session.scalars(select(Instance)).all() == []
        status = session.scalars(select(NodeStatus)).one()
        assert (status.accepting, status.reason) == (False, "storage.low_disk")
        assert session.scalars(select(Event).where(Event.tag == "node:storage:low")).one()
        reasons = {r.reason for r in session.scalars(select(Association))}
        assert reasons == {"storage.low_disk"}


def test_store_during_an_association_gets_out_of_resources(node: Node, testdata: Path) -> None:
    file = testdata / "pydicom-data" / "liver.dcm"
    ds = pydicom.dcmread(file)
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="RADASSIST")
    assert assoc.is_established
    guard = node.server.shared.disk_guard
    assert guard is not None
    try:
        guard.min_free_bytes = ABOVE_ANY_DISK  # the disk "fills up" mid-association
        status = assoc.send_c_store(ds)
        assert int(status.Status) == StoreStatus.OUT_OF_RESOURCES
        guard.min_free_bytes = 1
        assert int(assoc.send_c_store(ds).Status) == StoreStatus.SUCCESS
    finally:
        assoc.release()
    assert node.files() and len(node.files()) == 1
    with node.session_factory() as session:
        assert session.get(NodeStatus, guard.name).accepting is True
        tags = [e.tag for e in session.scalars(select(Event).order_by(Event.id))]
        assert "node:storage:low" in tags and "node:storage:ok" in tags
