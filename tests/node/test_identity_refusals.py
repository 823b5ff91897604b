"""Intake's refusals from the rows (identity and revision conflicts) reach the sender like a bad header.

``record_instance`` raises ``RejectedInput`` (``intake.identity_conflict``)
when the rows refuse an instance.  The listener then answers that code's failure status with its
Error Comment, records ``study:instance:rejected``, counts and logs it without patient data, and
keeps what was stored: a new file is removed, and a re-sent instance's stored file is never touched.
Here the intake rule is stood in for by a ``record_instance`` that refuses one SOP instance, so the
contract holds whatever rule intake applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from sqlalchemy import select

import dicom_node.storage
from dicom_node.statuses import ERROR_COMMENTS, StoreStatus
from radassist.db.tables import Event, Instance
from radassist.errors import RejectedInput
from tests.node.conftest import SECONDARY_CAPTURE, Node, secondary_capture


def _refusing(code: str, sop_instance_uid: str) -> Callable[..., bool]:
    library = dicom_node.storage.record_instance

    def record_instance(session: Any, header: Any, *args: Any, **kwargs: Any) -> bool:
        if header.sop_instance_uid == sop_instance_uid:
            raise RejectedInput("refused by the rows", code=code)
        return library(session, header, *args, **kwargs)

    return record_instance


def _send(node: Node, ds: pydicom.Dataset) -> pydicom.Dataset:
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(SECONDARY_CAPTURE, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="RADASSIST")
    assert assoc.is_established
    try:
        return assoc.send_c_store(ds)
    finally:
        assoc.release()


def _rejections(node: Node) -> list[dict[str, Any]]:
    with node.session_factory() as session:
        return [e.detail for e in session.scalars(select(Event).where(Event.tag == "study:instance:rejected"))]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("intake.identity_conflict", StoreStatus.CANNOT_UNDERSTAND_IDENTITY_CONFLICT),
    ],
)
def test_a_new_instance_refused_by_the_rows_gets_its_status_and_leaves_no_file(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    code: str, status: StoreStatus,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG, logger="dicom_node")
    ds = pydicom.dcmread(secondary_capture(tmp_path / "refused.dcm"))
    monkeypatch.setattr(dicom_node.storage, "record_instance", _refusing(code, ds.SOPInstanceUID))

    response = _send(node, ds)
    assert response.Status == status
    assert response.ErrorComment == ERROR_COMMENTS[status]
    assert node.files() == []
    assert node.counters.instances_rejected == 1
    [detail] = _rejections(node)
    assert (detail["code"], detail["status"], detail["calling_ae"]) == (code, int(status), "PYSCU")
    assert "SENTINEL" not in str(detail) and ds.StudyInstanceUID not in str(detail)
    assert "SENTINEL" not in caplog.text
    assert all(ds.StudyInstanceUID not in r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert any(code in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_a_refused_resend_leaves_the_stored_file_untouched(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same study, series and SOP instance (the same path), other patient: the first file stays."""
    ds = pydicom.dcmread(secondary_capture(tmp_path / "first.dcm"))
    assert _send(node, ds).Status == StoreStatus.SUCCESS
    [stored] = node.files()
    original = stored.read_bytes()

    ds.PatientID = "SENTINEL-OTHER-PATIENT"
    monkeypatch.setattr(dicom_node.storage, "record_instance", _refusing("intake.identity_conflict", ds.SOPInstanceUID))
    assert _send(node, ds).Status == StoreStatus.CANNOT_UNDERSTAND_IDENTITY_CONFLICT
    assert node.files() == [stored]
    assert stored.read_bytes() == original
    with node.session_factory() as session:
        [row] = session.scalars(select(Instance)).all()
    assert row.size_bytes == len(original)

    monkeypatch.undo()  # an identical re-send is still an idempotent Success
    assert _send(node, pydicom.dcmread(tmp_path / "first.dcm")).Status == StoreStatus.SUCCESS
    assert node.files() == [stored] and stored.read_bytes() == original


def test_every_failure_status_has_a_short_plain_error_comment() -> None:
    for status in StoreStatus:
        if status is StoreStatus.SUCCESS:
            continue
        comment = ERROR_COMMENTS[status]
        assert 0 < len(comment) <= 64 and comment.isascii() and "\\" not in comment, status
