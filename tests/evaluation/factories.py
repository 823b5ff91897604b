"""A generated evaluation data set: chest films (CR) with known reference reports, and a config for
the tiny scripted model that drafts them."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from radassist_devtools.synthetic_dicom import grey_image, write_part10

CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
SCRIPTED = (
    "Findings: The lungs are clear. No pleural effusion or pneumothorax. The cardiomediastinal silhouette is "
    "normal. Impression: No acute cardiopulmonary abnormality."
)
"""What the tiny model writes for every study (whatever the image)."""
REFERENCES = (
    "FINDINGS: The lungs are clear. No pleural effusion or pneumothorax. The cardiomediastinal silhouette is "
    "normal.\nIMPRESSION: No acute cardiopulmonary abnormality.",
    "FINDINGS: Small left apical pneumothorax. No pleural effusion.\nIMPRESSION: Left pneumothorax.",
    "FINDINGS: Small right pleural effusion. The lungs are otherwise clear.\nIMPRESSION: Right effusion.",
    "FINDINGS: Heart size is normal. Lungs are clear. No pneumothorax.\nIMPRESSION: Normal chest.",
)


@dataclass(frozen=True)
class GeneratedStudy:
    study_instance_uid: str
    accession_number: str
    sex: str
    age: str
    reference: str


def chest_film(folder: Path, study: GeneratedStudy, seed: int) -> Path:
    """One CR chest film of ``study`` (64 x 64 pixels) written to ``folder``."""
    ds = grey_image(CR_IMAGE, np.random.default_rng(seed).integers(0, 4096, size=(64, 64), dtype=np.uint16))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study.study_instance_uid, generate_uid()
    ds.AccessionNumber = study.accession_number
    ds.PatientName, ds.PatientID = f"EVAL^{seed}", f"EVAL-{seed}"
    ds.PatientSex, ds.PatientAge = study.sex, study.age
    ds.StudyDate, ds.StudyTime, ds.StudyID = "20261101", "090000", str(seed)
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", "PA"
    ds.StudyDescription, ds.SeriesDescription = "CHEST PA", "PA"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    return write_part10(ds, folder / f"{ds.SOPInstanceUID}.dcm")


def make_dataset(folder: Path, count: int = 20, *, jsonl: bool = False) -> list[GeneratedStudy]:
    """``count`` chest films (one per study) and their references, in ``folder``; every fourth
    reference alike (normal, missed pneumothorax, right effusion, normal in other words)."""
    studies = []
    for n in range(count):
        study = GeneratedStudy(generate_uid(), f"EVALACC{n:03d}", "F" if n % 2 else "M",
                               f"{(25 + 7 * n) % 90 + 5:03d}Y", REFERENCES[n % len(REFERENCES)])
        chest_film(folder / f"study{n:02d}", study, n)
        studies.append(study)
    write_references(folder, studies, jsonl=jsonl)
    return studies


def write_references(folder: Path, studies: Sequence[GeneratedStudy], *, jsonl: bool = False) -> Path:
    """``references.csv`` by Study Instance UID (or ``references.jsonl`` by accession number)."""
    if jsonl:
        path = folder / "references.jsonl"
        path.write_text("".join(json.dumps({"accession_number": s.accession_number, "report": s.reference}) + "\n"
                                for s in studies))
        return path
    path = folder / "references.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["study_instance_uid", "report"])
        writer.writerows([s.study_instance_uid, s.reference] for s in studies)
    return path


def write_config(path: Path, *, model: Path, data: Path, batch_size: int = 4) -> Path:
    path.write_text("\n".join([
        "[storage]", f'path = "{data}"',
        "[model]", f'name = "{model}"', 'device = "cpu"', "max_new_tokens = 64", "image_size = 64",
        "local_files_only = true", f"batch_size = {batch_size}",
        "[quality]", "bootstrap_samples = 500",
    ]) + "\n")
    return path
