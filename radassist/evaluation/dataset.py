"""An evaluation data set: a folder of DICOM studies and a file of reference reports.

Every file under the folder that reads as DICOM belongs to the study its StudyInstanceUID names
(files that are not DICOM are skipped).  The reference reports are a CSV file (a header line with
``study_instance_uid`` and/or ``accession_number``, and ``report``) or a JSON Lines file (one
object per line with the same keys), by default ``references.csv`` or ``references.jsonl`` in the
folder.  A reference names its study by Study Instance UID, else by accession number.  Studies
without a reference, and references without a study, are counted and left out.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from radassist.imaging.context import clinical_context
from radassist.quality.slices import sex_code

DEFAULT_NAMES = ("references.csv", "references.jsonl")
UID_KEYS = ("study_instance_uid", "studyinstanceuid", "study_uid")
ACCESSION_KEYS = ("accession_number", "accessionnumber", "accession")
REPORT_KEYS = ("report", "report_text", "text")
HEADER_TAGS = ("StudyInstanceUID", "AccessionNumber", "Modality", "PatientSex", "PatientAge", "PatientBirthDate",
               "StudyDate", "BodyPartExamined", "StudyDescription", "SOPClassUID")


class DatasetError(ValueError):
    """The data set cannot be read as given (the message says what to fix)."""


@dataclass(frozen=True)
class Reference:
    study_instance_uid: str | None
    accession_number: str | None
    report: str


@dataclass
class EvalStudy:
    """One study of the data set: its files, what its headers say, and its reference report."""

    study_instance_uid: str
    paths: list[Path] = field(default_factory=list)
    accession_number: str | None = None
    modality: str | None = None
    sex: str | None = None
    age: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Dataset:
    folder: Path
    references_file: Path
    studies: tuple[EvalStudy, ...]
    """The studies with a reference, in Study Instance UID order."""
    without_reference: int
    unmatched_references: int


def _files(folder: Path) -> Iterator[Path]:
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            yield Path(root) / name


def _key(row: dict[str, str], keys: tuple[str, ...]) -> str | None:
    lowered = {k.strip().lower(): v for k, v in row.items() if k}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _reference(row: dict[str, str], where: str) -> Reference:
    report = _key(row, REPORT_KEYS)
    uid, accession = _key(row, UID_KEYS), _key(row, ACCESSION_KEYS)
    if report is None or (uid is None and accession is None):
        raise DatasetError(f"{where}: needs a report and a study_instance_uid or accession_number")
    return Reference(uid, accession, report)


def read_references(path: Path) -> list[Reference]:
    """The references of a CSV or JSON Lines file (by its suffix)."""
    if not path.is_file():
        raise DatasetError(f"no reference file {path}")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        out = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    raise DatasetError(f"{path.name} line {number}: not JSON") from None
                if not isinstance(row, dict):
                    raise DatasetError(f"{path.name} line {number}: not a JSON object")
                out.append(_reference({str(k): v for k, v in row.items()}, f"{path.name} line {number}"))
        return out
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [_reference(row, f"{path.name} line {n}") for n, row in enumerate(csv.DictReader(handle), 2)]


def _scan(folder: Path, skip: Path) -> dict[str, EvalStudy]:
    studies: dict[str, EvalStudy] = {}
    for path in _files(folder):
        if path == skip:
            continue
        try:
            ds = dcmread(path, stop_before_pixels=True, specific_tags=list(HEADER_TAGS))
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        uid = str(ds.get("StudyInstanceUID", "") or "").strip()
        if not uid:
            continue
        study = studies.get(uid)
        if study is None:
            context = clinical_context([ds])
            study = studies[uid] = EvalStudy(
                uid, accession_number=str(ds.get("AccessionNumber", "") or "").strip() or None,
                modality=context.modality, sex=sex_code(context.sex), age=context.age,
            )
        study.paths.append(path)
    return studies


def load_dataset(folder: Path, references_file: Path | None = None) -> Dataset:
    """The studies of ``folder`` that have a reference report."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise DatasetError(f"no data set folder {folder}")
    if references_file is None:
        found = [folder / name for name in DEFAULT_NAMES if (folder / name).is_file()]
        if not found:
            raise DatasetError(f"{folder} has no {' or '.join(DEFAULT_NAMES)}; name the file with --references")
        references_file = found[0]
    references_file = references_file.resolve()
    references = read_references(references_file)
    studies = _scan(folder, references_file)
    by_accession: dict[str, list[EvalStudy]] = {}
    for study in studies.values():
        if study.accession_number:
            by_accession.setdefault(study.accession_number, []).append(study)
    unmatched = 0
    for ref in references:
        if ref.study_instance_uid in studies:
            matched = [studies[ref.study_instance_uid]]
        else:
            matched = by_accession.get(ref.accession_number, []) if ref.accession_number else []
        if not matched:
            unmatched += 1
        for study in matched:
            study.reference = ref.report
    with_reference = tuple(s for _, s in sorted(studies.items()) if s.reference)
    return Dataset(folder, references_file, with_reference, len(studies) - len(with_reference), unmatched)
