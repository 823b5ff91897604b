"""The evaluation data set and run folder, in process: references by UID or accession, what is left
out, a run that refuses other settings, a study that cannot be drafted counted with its reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from radassist.config import Settings
from radassist.evaluation.dataset import DatasetError, load_dataset
from radassist.evaluation.report import build_report
from radassist.evaluation.results import load_results
from radassist.evaluation.run import RunMismatch, open_run, run_eval
from tests.evaluation.factories import GeneratedStudy, chest_film, make_dataset, write_references


def test_references_by_accession_in_jsonl_and_what_is_left_out(tmp_path: Path) -> None:
    studies = make_dataset(tmp_path, 4, jsonl=True)
    (tmp_path / "notes.txt").write_text("not DICOM")
    extra = GeneratedStudy("1.2.826.0.1.99", "NOREF", "F", "050Y", "")
    chest_film(tmp_path / "extra", extra, 99)  # a study without a reference
    with (tmp_path / "references.jsonl").open("a") as handle:
        handle.write(json.dumps({"accession_number": "NOSTUDY", "report": "Normal."}) + "\n")
    dataset = load_dataset(tmp_path)
    assert [s.study_instance_uid for s in dataset.studies] == sorted(s.study_instance_uid for s in studies)
    assert (dataset.without_reference, dataset.unmatched_references) == (1, 1)
    first = next(s for s in dataset.studies if s.study_instance_uid == studies[0].study_instance_uid)
    assert first.reference == studies[0].reference and first.modality == "CR" and first.sex == "M"
    assert first.age == "30 years" and len(first.paths) == 1  # PatientAge 030Y


def test_a_data_set_that_cannot_be_read_says_what_to_fix(tmp_path: Path) -> None:
    make_dataset(tmp_path / "a", 1)
    (tmp_path / "a" / "references.csv").unlink()
    with pytest.raises(DatasetError, match="references.csv or references.jsonl"):
        load_dataset(tmp_path / "a")
    (tmp_path / "a" / "references.csv").write_text("study_instance_uid,report\n1.2.3,\n")
    with pytest.raises(DatasetError, match="line 2: needs a report"):
        load_dataset(tmp_path / "a")


def test_a_run_folder_refuses_other_settings(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    make_dataset(tmp_path / "ds", 1)
    dataset = load_dataset(tmp_path / "ds")
    settings = make_settings(model_name="/models/a")
    open_run(tmp_path / "run", settings, dataset)
    open_run(tmp_path / "run", make_settings(model_name="/models/a", model_batch_size="8"), dataset)  # no matter
    with pytest.raises(RunMismatch, match="another model"):
        open_run(tmp_path / "run", make_settings(model_name="/models/b"), dataset)
    relabelled = settings.model_copy(update={"quality": settings.quality.model_copy(update={"chexpert_profiles": ("dx",)})})
    with pytest.raises(RunMismatch, match="another quality"):
        open_run(tmp_path / "run", relabelled, dataset)


def test_a_study_without_pixels_is_counted_with_its_reason(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    from radassist_devtools.tiny_models import write_tiny_model
    from tests.evaluation.factories import SCRIPTED

    studies = make_dataset(tmp_path / "ds", 3)
    broken = pydicom.dcmread(next((tmp_path / "ds" / "study00").glob("*.dcm")))
    del broken.PixelData
    broken.save_as(next((tmp_path / "ds" / "study00").glob("*.dcm")), enforce_file_format=True)
    write_references(tmp_path / "ds", studies)
    model = write_tiny_model(tmp_path / "model", report=SCRIPTED)
    settings = make_settings(model_name=str(model), model_device="cpu", model_image_size="64",
                             model_max_new_tokens="64", model_local_files_only="true",
                             quality_bootstrap_samples="200")
    outcome = run_eval(load_dataset(tmp_path / "ds"), settings, tmp_path / "run")
    assert (outcome.drafted, outcome.failed) == (2, 1)
    failed = next(r for r in load_results(tmp_path / "run") if not r.measured)
    assert failed.study_instance_uid == studies[0].study_instance_uid and failed.error_code and not failed.retryable
    report = build_report(tmp_path / "run", settings.quality)
    assert report.studies == 3 and report.measured == 2 and report.failures == {failed.error_code: 1}
    again = run_eval(load_dataset(tmp_path / "ds"), settings, tmp_path / "run")
    assert (again.done_before, again.drafted, again.failed) == (3, 0, 0)  # a permanent failure is not retried
