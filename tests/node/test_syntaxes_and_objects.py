"""Every common transfer syntax stored byte-identical; non-image objects stored but never drafted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import EncapsulatedPDFStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom.dsutils import split_dataset
from sqlalchemy import select

from radassist.completion.claim import claim_complete_studies
from radassist.db.tables import Event, Instance, Job, Study
from radassist.states import StudyState
from tests.node.conftest import Node
from tests.node.dcmtk import output, send

#: pydicom's own test files, one per transfer syntax not covered by tests/node/test_listener.py.
SYNTAX_SAMPLES = (
    "image_dfl.dcm",  # deflated explicit VR little endian
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline
    "JPGExtended.dcm",  # JPEG extended (12 bit)
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "MR_small_implicit.dcm",  # implicit VR little endian
    "MR_small_RLE.dcm",  # RLE lossless
    "CT_small.dcm",  # explicit VR little endian
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless, first-order prediction (process 14, SV1)
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless only
    "JPEG2000.dcm",  # JPEG 2000
)


def _dataset_bytes(path: Path) -> bytes:
    _meta, offset = split_dataset(path)
    return path.read_bytes()[offset:]


@pytest.mark.parametrize("name", SYNTAX_SAMPLES)
def test_transfer_syntax_is_stored_byte_identical(
    node: Node, reference_scp: tuple[int, Path], name: str
) -> None:
    file = Path(str(get_testdata_file(name)))
    original = pydicom.dcmread(file, stop_before_pixels=True)
    result = send(node.port, file)
    assert result.returncode == 0, output(result)
    ref_port, ref_dir = reference_scp
    assert send(ref_port, file).returncode == 0
    (sent,) = [p for p in ref_dir.rglob("*") if p.is_file()]
    with node.session_factory() as session:
        row = session.scalars(select(Instance)).one()
    assert row.transfer_syntax_uid == original.file_meta.TransferSyntaxUID
    assert _dataset_bytes(node.store.path(row.path)) == _dataset_bytes(sent)


def _pdf(path: Path, study_uid: str) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = EncapsulatedPDFStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = EncapsulatedPDFStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "DOC"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n%%EOF\n"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_non_image_objects_are_stored_but_not_drafted(node: Node, tmp_path: Path) -> None:
    sr = Path(str(get_testdata_file("test-SR.dcm")))
    study_uid = str(pydicom.dcmread(sr, stop_before_pixels=True).StudyInstanceUID)
    pdf = _pdf(tmp_path / "doc.dcm", study_uid)
    assert send(node.port, sr).returncode == 0
    assert send(node.port, pdf).returncode == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with node.session_factory() as session:
        assert len(session.scalars(select(Instance)).all()) == 2
        assert claim_complete_studies(session, now=later, quiet_seconds=1, model_name="m") == []
        session.commit()
        study = session.scalars(select(Study)).one()
        assert study.state == StudyState.COMPLETE
        assert session.scalars(select(Job)).all() == []
        done = session.scalars(select(Event).where(Event.tag == "study:complete")).one()
        assert done.detail["drafted"] is False
