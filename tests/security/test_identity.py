"""Never the wrong patient, against the real listener and dcmtk's storescu, on both databases: a SOP
Instance UID sent again under another study and patient is refused and the first study stays as it
was; instances of one study naming two patients hold it; a UID with a trailing newline is refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from sqlalchemy import func, select

from radassist.completion.claim import claim_complete_studies
from radassist.db.tables import Event, Instance, Study
from radassist.states import StudyState
from tests.badinput import rawdicom as raw
from tests.dicom_factories import make_ct_study, write_study
from tests.node.conftest import Node, node, start_node  # noqa: F401  (fixtures: a listener per database)
from tests.peers import storescu


def _study(node: Node, uid: str) -> Study | None:  # noqa: F811
    with node.session_factory() as session:
        return session.scalars(select(Study).where(Study.study_instance_uid == uid)).one_or_none()


def test_a_uid_reused_for_another_patient_is_refused_and_the_first_study_kept(  # noqa: F811
    node: Node, tmp_path: Path  # noqa: F811
) -> None:
    first = make_ct_study(series_count=1, instances_per_series=2)
    first_files = write_study(first, tmp_path / "first")
    assert storescu(node.port, *first_files).returncode == 0
    with node.session_factory() as session:
        before = {row.sop_instance_uid: (row.study_id, row.path, row.size_bytes)
                  for row in session.scalars(select(Instance))}
    stored = {uid: node.store.path(path).read_bytes() for uid, (_, path, _) in before.items()}

    # The second patient's study reuses the first one's SOP Instance UID (a broken modality, a bad merge).
    second = make_ct_study(series_count=1, instances_per_series=1, patient_name="OTHER^PATIENT",
                           patient_id="OTHER-PID")
    second[0].SOPInstanceUID = second[0].file_meta.MediaStorageSOPInstanceUID = first[0].SOPInstanceUID
    (second_file,) = write_study(second, tmp_path / "second")
    refused = storescu(node.port, second_file)
    assert refused.returncode != 0, refused.stderr

    with node.session_factory() as session:
        after = {row.sop_instance_uid: (row.study_id, row.path, row.size_bytes)
                 for row in session.scalars(select(Instance))}
        studies = session.scalar(select(func.count()).select_from(Study))
        events = session.scalars(select(Event).where(Event.tag == "study:instance:identity_refused")).all()
    assert after == before and studies == 1
    assert {uid: node.store.path(path).read_bytes() for uid, (_, path, _) in after.items()} == stored
    first_study = _study(node, str(first[0].StudyInstanceUID))
    assert first_study is not None and first_study.instance_count == 2
    assert [(e.study_id, e.detail["differs"]) for e in events] == [(first_study.id, "study")]
    assert len(node.files()) == 2  # the refused copy was not kept


def test_a_study_naming_two_patients_is_held(node: Node, tmp_path: Path) -> None:  # noqa: F811
    study = make_ct_study(series_count=1, instances_per_series=3)
    study[2].PatientID = "SOMEONE-ELSE"
    files = write_study(study, tmp_path / "study")
    assert storescu(node.port, *files).returncode == 0  # stored: nothing accepted is lost
    held = _study(node, str(study[0].StudyInstanceUID))
    assert held is not None and (held.state, held.instance_count) == (StudyState.IDENTITY_CONFLICT, 3)
    with node.session_factory() as session:
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        assert claim_complete_studies(session, now=later, quiet_seconds=1, model_name="m") == []
        assert session.scalar(select(func.count()).select_from(Event).where(
            Event.tag == "study:identity:conflict")) == 1


def test_a_uid_with_a_trailing_newline_is_refused(node: Node, tmp_path: Path) -> None:  # noqa: F811
    """Before, ``<uid>\\n`` was stored as a second study beside ``<uid>``.  dcmtk's storescu strips
    the newline before sending, so the data set goes out through a hand-written client, byte for byte."""
    study = make_ct_study(series_count=1, instances_per_series=2)
    uid = str(study[0].StudyInstanceUID)
    uid = uid if len(uid) % 2 else uid[:-1]  # odd: the newline takes the place of the NUL pad
    for ds in study:
        ds.StudyInstanceUID = uid
    assert storescu(node.port, *write_study(study[:1], tmp_path / "study")).returncode == 0
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, study[1])
    data = buffer.getvalue()
    assert data.count(uid.encode() + b"\x00") == 1
    data = data.replace(uid.encode() + b"\x00", uid.encode() + b"\n")
    context = raw.Context(1, str(study[1].SOPClassUID))
    with raw.connect(node.port) as sock:
        assert raw.associate(sock, [context]).accepted_contexts.get(1) == 0
        reply = raw.c_store(sock, 1, str(study[1].SOPClassUID), str(study[1].SOPInstanceUID), data)
        raw.release(sock)
    assert reply.status not in (None, 0x0000)
    with node.session_factory() as session:
        assert session.scalars(select(Study.study_instance_uid)).all() == [uid]
        rejected = session.scalars(select(Event).where(Event.tag == "study:instance:rejected")).all()
    assert [e.detail["code"] for e in rejected] == ["dicom.invalid_uid"]
