"""The malformed-input corpus: every case gets a failure status or an abort, and the node keeps serving.

One node (SQLite) takes the whole corpus; after each case dcmtk's echoscu must still get through.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, _config
from sqlalchemy import func, select

from radassist.config import Settings
from radassist.db.tables import Association, Instance
from tests.conftest import migrate, wait_until
from tests.node.conftest import Node
from tests.node.corpus import CT, DATASET_CASES, PDU_CASES, SC, valid_file
from tests.node.dcmtk import echo, output


@pytest.fixture
def sqlite_node(make_settings: Callable[..., Settings], start_node: Callable[..., Node], tmp_path: Path) -> Node:
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'corpus.sqlite3'}")
    migrate(settings)
    return start_node(settings)


def _send_file(node: Node, path: Path) -> int | None:
    """Send a file exactly as written (pynetdicom, chunked); the status, or None if the association broke."""
    ae = AE(ae_title="PYSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for sop_class in (SC, CT):
        ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        assoc = ae.associate("127.0.0.1", node.port, ae_title="RADASSIST")
        assert assoc.is_established
        try:
            status = assoc.send_c_store(path)
        finally:
            if assoc.is_established:
                assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous
    return int(status.Status) if "Status" in status else None


def _stored(node: Node) -> int:
    with node.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(Instance)) or 0)


def test_malformed_data_sets_are_refused_and_the_node_keeps_serving(
    sqlite_node: Node, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    node = sqlite_node
    assert len(DATASET_CASES) >= 20
    control = tmp_path / "valid.dcm"
    control.write_bytes(valid_file()[1])
    assert _send_file(node, control) == 0x0000  # the generator itself makes sendable files
    problems = []
    for name, build in DATASET_CASES.items():
        path = tmp_path / f"{name}.dcm"
        path.write_bytes(build()[1])
        status = _send_file(node, path)
        if status == 0x0000:
            problems.append(f"{name}: stored")
        if echo(node.port).returncode != 0:
            problems.append(f"{name}: node stopped answering")
    assert problems == []
    assert _stored(node) == 1  # only the control case
    assert not [p for p in node.files() if p.suffix == ".part"]
    assert len(node.files()) == 1
    assert "SENTINEL" not in caplog.text


def test_malformed_pdus_abort_and_the_node_keeps_serving(sqlite_node: Node) -> None:
    node = sqlite_node
    problems = []
    for name, payload in PDU_CASES.items():
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as sock:
            try:
                sock.sendall(payload)
                sock.settimeout(0.3)
                sock.recv(65536)  # an A-ABORT, an A-ASSOCIATE-AC/RJ, or nothing
            except OSError:
                pass
        result = echo(node.port)
        if result.returncode != 0:
            problems.append(f"{name}: {output(result)[-200:]}")
    assert problems == []
    assert node.counters.snapshot()["instances_stored"] == 0
    # Every association row is completed, however its connection ended (also when pynetdicom's
    # reactor ended on an error, or reported the close before the request was decided).
    wait_until(lambda: all(row.ended_at is not None for row in _associations(node)), timeout=15)


def _associations(node: Node) -> list[Association]:
    with node.session_factory() as session:
        return list(session.scalars(select(Association)))
