"""The listener against dcmtk peers: echo, store (compressed included), re-send, refusals, failures."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config
from pynetdicom.dsutils import split_dataset
from sqlalchemy import func, select

from dicom_node.statuses import StoreStatus
from radassist.db.tables import Event, Instance, Series, Study
from radassist.states import StudyState
from tests.node.conftest import SECONDARY_CAPTURE, Node, echoscu, secondary_capture, storescu
from tests.peers import STORESCU

SAMPLES = ("RG1_J2KR.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "emri_small_RLE.dcm", "liver.dcm")


def _dataset_bytes(path: Path) -> bytes:
    """The encoded data set after the file meta (what travelled in the C-STORE)."""
    _meta, offset = split_dataset(path)
    return path.read_bytes()[offset:]


def _count(node: Node, entity: type) -> int:
    with node.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(entity)) or 0)


def _send_with_pynetdicom(node: Node, path: Path) -> int:
    """Send a file as-is with pynetdicom's SCU, which (chunked) takes the UIDs from the file meta only."""
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(SECONDARY_CAPTURE, ExplicitVRLittleEndian)
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        assoc = ae.associate("127.0.0.1", node.port, ae_title="RADASSIST")
        assert assoc.is_established
        try:
            status = assoc.send_c_store(path)
        finally:
            assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous
    return int(status.Status)


def test_echo(node: Node) -> None:
    result = echoscu(node.port)
    assert result.returncode == 0, result.stderr
    assert node.counters.echoes == 1


def test_store_keeps_the_bytes_sent(node: Node, testdata: Path, reference_scp: tuple[int, Path]) -> None:
    files = [testdata / "pydicom-data" / name for name in SAMPLES]
    result = storescu(node.port, *files)
    assert result.returncode == 0, result.stdout + result.stderr
    # The same sends to dcmtk's bit-preserving storescp show exactly what went over the wire.
    ref_port, ref_dir = reference_scp
    assert storescu(ref_port, *files).returncode == 0

    with node.session_factory() as session:
        for file in files:
            original = pydicom.dcmread(file, stop_before_pixels=True)
            row = session.scalars(
                select(Instance).where(Instance.sop_instance_uid == original.SOPInstanceUID)
            ).one()
            assert row.transfer_syntax_uid == original.file_meta.TransferSyntaxUID
            stored = node.store.path(row.path)
            assert row.size_bytes == stored.stat().st_size
            sent = [
                p
                for p in ref_dir.rglob("*")
                if p.is_file()
                and pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID == original.SOPInstanceUID
            ]
            assert len(sent) == 1
            assert _dataset_bytes(stored) == _dataset_bytes(sent[0])
            # And the stored file is a valid Part 10 file of the original's content.
            again = pydicom.dcmread(stored)
            assert again.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
            assert again.PixelData == pydicom.dcmread(file).PixelData

        studies = session.scalars(select(Study)).all()
        assert len(studies) == len(
            {pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID for f in files}
        )
        assert all(s.state == StudyState.RECEIVING and s.calling_ae_title == "MODALITY" for s in studies)
        assert sum(s.instance_count for s in studies) == len(files)
        received = session.scalar(
            select(func.count()).select_from(Event).where(Event.tag == "study:instance:received")
        )
        assert received == len(files)
    assert not [p for p in node.files() if p.name.endswith(".part")]
    assert node.counters.instances_stored == len(files)


def test_resend_keeps_one_row(node: Node, testdata: Path) -> None:
    file = testdata / "pydicom-data" / "JPGLosslessP14SV1_1s_1f_8b.dcm"
    assert storescu(node.port, file).returncode == 0
    assert storescu(node.port, file).returncode == 0
    assert _count(node, Instance) == 1
    assert _count(node, Series) == 1
    with node.session_factory() as session:
        study = session.scalars(select(Study)).one()
        assert study.instance_count == 1
    assert len(node.files()) == 1
    assert node.counters.instances_duplicate == 1


def test_wrong_called_ae_is_refused(node: Node, testdata: Path) -> None:
    file = testdata / "pydicom-data" / "liver.dcm"
    result = storescu(node.port, file, called_ae="SOMEONE_ELSE")
    assert result.returncode != 0
    assert "Association Rejected" in result.stdout + result.stderr
    assert _count(node, Instance) == 0
    assert echoscu(node.port, called_ae="SOMEONE_ELSE").returncode != 0
    assert echoscu(node.port).returncode == 0


def test_missing_sop_instance_uid_is_refused_and_node_keeps_serving(
    node: Node, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # dcmtk's storescu will not send such a file, so pynetdicom's SCU sends it from the file meta.
    bad = secondary_capture(tmp_path / "no-sop-uid.dcm", SOPInstanceUID=True)
    assert _send_with_pynetdicom(node, bad) == StoreStatus.CANNOT_UNDERSTAND_MISSING_UID
    assert _count(node, Instance) == 0
    assert node.files() == []
    with node.session_factory() as session:
        rejected = session.scalars(select(Event).where(Event.tag == "study:instance:rejected")).one()
        assert rejected.detail["code"] == "dicom.missing_uid"
        assert "SENTINEL" not in str(rejected.detail)

    good = secondary_capture(tmp_path / "good.dcm")
    assert storescu(node.port, good).returncode == 0
    assert _count(node, Instance) == 1
    # Even at DEBUG, neither the patient name nor the accession number reaches a log record.
    assert "SENTINEL" not in caplog.text
    assert any("stored a new instance" in r.getMessage() for r in caplog.records)


def test_missing_study_uid_is_refused_by_status(node: Node, tmp_path: Path) -> None:
    bad = secondary_capture(tmp_path / "no-study-uid.dcm", StudyInstanceUID=True)
    result = storescu(node.port, bad)
    out = (result.stdout + result.stderr).lower()
    assert "cannotunderstand" in out, out
    assert result.returncode != 0
    assert _count(node, Study) == 0
    assert node.counters.instances_rejected == 1
    assert echoscu(node.port).returncode == 0


def test_data_set_of_another_sop_class_is_refused(node: Node, tmp_path: Path) -> None:
    path = secondary_capture(tmp_path / "mismatch.dcm")
    ds = pydicom.dcmread(path)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage, while the command says SC
    ds.save_as(path, enforce_file_format=False)
    assert _send_with_pynetdicom(node, path) == StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    assert _count(node, Instance) == 0


def test_disk_failure_answers_out_of_resources(node: Node, tmp_path: Path) -> None:
    file = secondary_capture(tmp_path / "one.dcm")
    blocker = node.block_study_folder(file)  # the study's folder cannot be created

    result = storescu(node.port, file)
    assert "outofresources" in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    assert _count(node, Instance) == 0
    assert node.files() == [blocker]

    blocker.unlink()
    assert storescu(node.port, file).returncode == 0
    assert _count(node, Instance) == 1


def test_database_failure_answers_out_of_resources_and_leaves_no_file(
    make_settings, start_node, tmp_path: Path, testdata: Path
) -> None:
    # A database without tables: every insert fails, as with a broken or unreachable server.
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    node = start_node(settings)
    file = testdata / "pydicom-data" / "liver.dcm"
    result = storescu(node.port, file)
    assert "outofresources" in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    assert node.files() == []
    assert node.counters.instances_failed == 1
    assert echoscu(node.port).returncode == 0


def test_concurrent_senders_of_one_study(node: Node, tmp_path: Path) -> None:
    """Several associations at once, each with other instances of the same (new) study."""
    import concurrent.futures

    study_uid, series_uid = generate_uid(), generate_uid()
    folders = []
    for sender in range(4):
        folder = tmp_path / f"sender{sender}"
        folder.mkdir()
        for n in range(3):
            path = secondary_capture(folder / f"{n}.dcm")
            ds = pydicom.dcmread(path)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.save_as(path, enforce_file_format=False)
        folders.append(sorted(folder.iterdir()))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda files: storescu(node.port, *files), folders))
    assert all(r.returncode == 0 for r in results), [r.stdout + r.stderr for r in results]
    with node.session_factory() as session:
        study = session.scalars(select(Study)).one()
        assert study.instance_count == 12
        assert session.scalars(select(Series)).one().instance_count == 12
    assert _count(node, Instance) == 12


@pytest.mark.parametrize("sample", ["RG1_J2KI.dcm"])
def test_lossy_j2k_is_accepted_as_sent(node: Node, testdata: Path, sample: str) -> None:
    file = testdata / "pydicom-data" / sample
    assert storescu(node.port, file).returncode == 0
    with node.session_factory() as session:
        row = session.scalars(select(Instance)).one()
    assert row.transfer_syntax_uid == pydicom.uid.JPEG2000
    assert pydicom.dcmread(node.store.path(row.path)).PixelData == pydicom.dcmread(file).PixelData


def test_an_association_logs_each_study_once_at_info(node: Node, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A CT's slices are one INFO line, not one each: the association's first instance of each study
    is logged at INFO, the others at DEBUG."""
    caplog.set_level(logging.DEBUG)
    first = secondary_capture(tmp_path / "a0.dcm")
    template = pydicom.dcmread(first)
    files = [first]
    for n in range(1, 4):
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        template.save_as(tmp_path / f"a{n}.dcm", enforce_file_format=False)
        files.append(tmp_path / f"a{n}.dcm")
    files.append(secondary_capture(tmp_path / "b0.dcm"))  # another study
    one_association = [STORESCU, "-xe", "-aet", "MODALITY", "-aec", "RADASSIST", "127.0.0.1", str(node.port)]
    result = subprocess.run([*one_association, *map(str, files)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    stored = [r for r in caplog.records if r.getMessage().startswith("stored a new instance")]
    assert len(stored) == 5
    assert [r.levelno for r in stored] == [logging.INFO, logging.DEBUG, logging.DEBUG, logging.DEBUG, logging.INFO]
    assert _count(node, Instance) == 5
