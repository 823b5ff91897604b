"""prepare_study on real compressed DICOM files (J2K, RLE, JPEG lossless, JPEG-LS) and made-up studies."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from radassist.errors import PermanentFailure
from radassist.imaging import ClinicalContext, clinical_context, prepare_study
from radassist.imaging.context import age_from_dates, format_age
from radassist.imaging.pixels import frame_to_rgb
from radassist.imaging.select import sample_evenly


@pytest.fixture
def data(testdata: Path) -> Path:
    return testdata / "pydicom-data"


def test_cr_monochrome1_is_inverted_rgb_and_resized(data: Path) -> None:
    path = data / "RG1_J2KR.dcm"
    study = prepare_study([path], image_size=256, max_images=4)
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    assert len(study.images) == 1
    image = study.images[0]
    assert image.mode == "RGB"
    assert max(image.size) == 256
    assert image.size == (round(ds.Columns * 256 / ds.Rows), 256)  # aspect ratio kept
    assert study.source_sop_instance_uids == (ds.SOPInstanceUID,)

    # The same pipeline without the MONOCHROME1 inversion: our output must be its negative.
    windowed = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds).astype(np.float64)
    plain = (windowed - windowed.min()) / (windowed.max() - windowed.min()) * 255.0
    rgb = frame_to_rgb(ds)
    assert rgb.dtype == np.uint8 and rgb.shape == (ds.Rows, ds.Columns, 3)
    assert abs(float(rgb[..., 0].mean()) - (255.0 - float(plain.mean()))) < 1.0
    assert abs(float(rgb[..., 0].mean()) - float(plain.mean())) > 20.0


def test_cr_context_has_age_sex_and_no_identifiers(data: Path) -> None:
    study = prepare_study([data / "RG1_J2KR.dcm"], image_size=128, max_images=4)
    assert study.context.modality == "CR"
    assert study.context.body_part == "chest"
    assert study.context.age == "64 years"
    assert study.context.sex == "female"
    assert set(vars(study.context)) == {
        "modality",
        "body_part",
        "study_description",
        "series_description",
        "age",
        "sex",
        "indication",
    }


def test_multiframe_rle_volume_is_sampled(data: Path) -> None:
    study = prepare_study([data / "emri_small_RLE.dcm"], image_size=128, max_images=4)
    assert len(study.images) == 4
    assert all(image.mode == "RGB" and image.size == (64, 64) for image in study.images)  # never upscaled
    assert len(study.source_sop_instance_uids) == 1
    assert "4 of 10 slices shown" in study.notes
    arrays = [np.asarray(image) for image in study.images]
    assert not np.array_equal(arrays[0], arrays[-1])  # different slices, not one frame four times


def test_jpeg_ls_matches_rle_of_the_same_data(data: Path) -> None:
    rle = prepare_study([data / "emri_small_RLE.dcm"], image_size=64, max_images=3)
    jls = prepare_study([data / "emri_small_jpeg_ls_lossless.dcm"], image_size=64, max_images=3)
    assert len(jls.images) == 3
    for a, b in zip(rle.images, jls.images, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_ct_j2k_is_windowed(data: Path) -> None:
    study = prepare_study([data / "693_J2KR.dcm"], image_size=256, max_images=8)
    assert study.context.modality == "CT"
    pixels = np.asarray(study.images[0])
    assert study.images[0].size == (256, 256)
    # A soft-tissue window (40/400 HU) clips air and bone: both ends of the range are used.
    assert pixels.min() == 0 and pixels.max() == 255
    assert np.array_equal(pixels[..., 0], pixels[..., 2])


def test_jpeg_lossless_keeps_aspect_ratio(data: Path) -> None:
    study = prepare_study([data / "JPEG-LL.dcm"], image_size=256, max_images=8)
    assert study.images[0].size == (64, 256)
    assert study.context.modality == "NM"


def _sr(tmp_path: Path, name: str, sop_class: str, modality: str) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = "SENTINEL^PATIENT"
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


def test_non_image_objects_only_raise_no_images(tmp_path: Path) -> None:
    paths = [
        _sr(tmp_path, "sr.dcm", "1.2.840.10008.5.1.4.1.1.88.11", "SR"),
        _sr(tmp_path, "ko.dcm", "1.2.840.10008.5.1.4.1.1.88.59", "KO"),
        _sr(tmp_path, "pr.dcm", "1.2.840.10008.5.1.4.1.1.11.1", "PR"),
    ]
    with pytest.raises(PermanentFailure) as caught:
        prepare_study(paths, image_size=64, max_images=4)
    assert caught.value.code == "imaging.no_images"


def test_sr_beside_an_image_is_skipped(tmp_path: Path, data: Path) -> None:
    paths = [_sr(tmp_path, "sr.dcm", "1.2.840.10008.5.1.4.1.1.88.11", "SR"), data / "JPEG-LL.dcm"]
    study = prepare_study(paths, image_size=64, max_images=4)
    assert len(study.images) == 1
    assert "1 non-image object(s) skipped" in study.notes


def test_corrupt_pixels_raise_undecodable_without_patient_data(tmp_path: Path, data: Path) -> None:
    ds = pydicom.dcmread(data / "RG1_J2KR.dcm")
    ds.PatientName = "SENTINEL^PATIENT"
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 64])
    path = tmp_path / "broken.dcm"
    ds.save_as(path)
    with pytest.raises(PermanentFailure) as caught:
        prepare_study([path], image_size=64, max_images=4)
    assert caught.value.code == "dicom.undecodable"
    assert "SENTINEL" not in str(caught.value)
    assert len(str(caught.value)) < 300


def test_ct_slices_are_ordered_along_the_normal(tmp_path: Path, data: Path) -> None:
    template = pydicom.dcmread(data / "693_J2KR.dcm")
    series = generate_uid()
    z_values = [float(z) for z in range(12)]
    random.Random(1).shuffle(z_values)
    by_z: dict[float, str] = {}
    paths = []
    for number, z in enumerate(z_values, start=1):
        ds = copy.deepcopy(template)
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = series
        ds.InstanceNumber = number  # arrival order, deliberately not the slice order
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, z]
        by_z[z] = ds.SOPInstanceUID
        path = tmp_path / f"{number}.dcm"
        ds.save_as(path)
        paths.append(path)
    study = prepare_study(paths, image_size=64, max_images=4)
    assert len(study.images) == 4
    expected = tuple(by_z[float(i)] for i in sample_evenly(12, 4))
    assert study.source_sop_instance_uids == expected
    assert "4 of 12 slices shown" in study.notes


def test_frontal_radiograph_comes_before_lateral(tmp_path: Path, data: Path) -> None:
    lateral = pydicom.dcmread(data / "RG1_J2KI.dcm")
    lateral.ViewPosition = "LL"
    lateral.InstanceNumber = 1
    lateral_path = tmp_path / "lat.dcm"
    lateral.save_as(lateral_path)
    frontal = pydicom.dcmread(data / "RG3_J2KI.dcm")
    assert frontal.ViewPosition == "AP"
    study = prepare_study([lateral_path, data / "RG3_J2KI.dcm"], image_size=64, max_images=4)
    assert study.source_sop_instance_uids == (frontal.SOPInstanceUID, lateral.SOPInstanceUID)


def test_missing_view_position_is_noted(tmp_path: Path, data: Path) -> None:
    ds = pydicom.dcmread(data / "RG1_J2KI.dcm")
    del ds.ViewPosition
    ds.save_as(tmp_path / "noview.dcm")
    study = prepare_study([tmp_path / "noview.dcm"], image_size=64, max_images=4)
    assert any("no laterality/view tags" in note for note in study.notes)
    assert study.labels == ("view unknown",)


def test_clinical_context_from_dates_and_request() -> None:
    ds = Dataset()
    ds.PatientName = "SENTINEL^PATIENT"
    ds.PatientID = "SENTINEL-ID"
    ds.PatientBirthDate = "19600615"
    ds.StudyDate = "20240614"
    ds.PatientSex = "O"
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    request = Dataset()
    request.ReasonForTheRequestedProcedure = "Cough for three weeks"
    ds.RequestAttributesSequence = [request]
    sr = Dataset()
    sr.Modality = "SR"
    context = clinical_context([sr, ds])
    assert context == ClinicalContext(
        modality="DX",
        body_part="chest",
        study_description=None,
        age="63 years",
        sex="other",
        indication="Cough for three weeks",
    )
    assert "SENTINEL" not in repr(context) and "1960" not in repr(context)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("064Y", "64 years"), ("001Y", "1 year"), ("006M", "6 months"), ("010W", "10 weeks"), ("bad", None)],
)
def test_format_age(value: str, expected: str | None) -> None:
    assert format_age(value) == expected


def test_age_from_dates_under_two_years_in_months() -> None:
    assert age_from_dates("20230110", "20240209") == "12 months"
    assert age_from_dates("20240101", "20240101") == "0 days"
    assert age_from_dates("20250101", "20240101") is None
