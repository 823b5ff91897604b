"""The radiologists' verdicts as a CSV table: one row per verdict, with the draft it judges.

For evaluating the model outside RadAssist: the verdict, reason codes, corrected text and time
spent beside the draft's text, model, profile and warnings.  No patient name, ID, birth date or
accession number is in it (the study is named by its surrogate id and modality).  Every cell that a
spreadsheet would read as a formula is prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.db.tables import Draft, DraftVerdict, Job, Study
from radassist.safety.gate import column_checks

COLUMNS = (
    "verdict_id", "given_at", "user_name", "verdict", "reasons", "seconds_spent", "corrected_text",
    "job_id", "study_id", "modality", "profile", "model_name", "model_revision", "prompt_version",
    "drafted_at", "warnings", "findings", "impression",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, (list, tuple)):
        value = ";".join(str(v) for v in value)
    text = str(value.value if isinstance(value, Enum) else value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def verdict_rows(session: Session) -> Iterator[tuple[Any, ...]]:
    """Every verdict with its draft, oldest first."""
    stmt = (
        select(DraftVerdict.id, DraftVerdict.created_at, DraftVerdict.user_name, DraftVerdict.verdict,
               DraftVerdict.reasons, DraftVerdict.seconds_spent, DraftVerdict.corrected_text, Job.id, Study.id,
               Study.modality, Draft.profile, Draft.model_name, Draft.model_revision, Draft.prompt_version,
               Draft.created_at, Draft.warning_checks, Draft.findings, Draft.impression)
        .select_from(DraftVerdict).join(Draft, Draft.id == DraftVerdict.draft_id).join(Job, Job.id == Draft.job_id)
        .join(Study, Study.id == Job.study_id).order_by(DraftVerdict.created_at, DraftVerdict.id)
    )
    for row in session.execute(stmt):
        values = list(row)
        values[15] = column_checks(values[15])
        yield tuple(values)


def verdicts_csv(session: Session) -> str:
    """The whole table as CSV text (header first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in verdict_rows(session):
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()
