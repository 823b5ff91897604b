"""Fixtures for the drafting engine: tiny models of three architectures and the kinds of study.

The tiny models are real transformers architectures with random towers and a decoder wired to
write one fixed report (``radassist_devtools.tiny_models``): they prove the code path, not the reading.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from radassist_devtools.tiny_models import SUPPORTED_ARCHS, write_tiny_model
from tests.dicom_factories import make_ct_instance

ARCHS = SUPPORTED_ARCHS  # gemma3, llava, qwen2_vl


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: write_tiny_model(root / arch, arch=arch) for arch in ARCHS}


def write_ct_series(folder: Path, slices: int, *, size: int = 16, shuffle: bool = True) -> list[Path]:
    """A synthetic axial CT series; files written in a shuffled order with shuffled InstanceNumbers."""
    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    order = list(range(1, slices + 1))
    numbers = list(order)
    if shuffle:
        random.Random(7).shuffle(numbers)
    paths = []
    for position, number in zip(order, numbers, strict=False):
        ds = make_ct_instance(
            study_uid=study, series_uid=series, frame_of_reference_uid=frame, series_number=3,
            instance_number=number, rows=size, columns=size,
        )
        ds.ImagePositionPatient = [-100.0, -100.0, -2.5 * position]  # true order: by position
        ds.SeriesDescription = "AXIAL 2.5 SOFT"
        path = folder / f"{number:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture
def pa_lat_pair(tmp_path: Path, testdata: Path) -> Callable[[], list[Path]]:
    """A chest PA + lateral pair made from the CR sample (lateral first on disk, to be reordered)."""

    def make() -> list[Path]:
        source = pydicom.dcmread(testdata / "pydicom-data" / "RG1_J2KI.dcm")
        paths = []
        for view, number in (("LL", 1), ("PA", 2)):
            ds = copy.deepcopy(source)
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.ViewPosition = view
            ds.InstanceNumber = number
            path = tmp_path / f"{view}.dcm"
            ds.save_as(path)
            paths.append(path)
        return paths

    return make


def prepare(*job_ids: object) -> None:
    """Run the prepare stage (cpu queue) on queued jobs, as a cpu worker would before their draft."""
    from workers.tasks.prepare import prepare_for_model

    for job_id in job_ids:
        prepare_for_model.apply(args=(str(job_id),)).get()
