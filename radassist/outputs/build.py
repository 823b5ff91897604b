"""Build every output of a job on its own: an SR class or the ORU that cannot be built is reported
in plain words, and the others are built all the same.

A reason names what could not be built and why, in words an administrator can act on
(:func:`radassist.reasons.plain_reason`): the builders' own messages (they name the argument and
carry no patient data), or what kind of thing went wrong.  An unexpected exception is logged with
its traceback.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from radassist.config import Hl7Settings
from radassist.db.tables import Draft
from radassist.errors import RadAssistError
from radassist.outputs.grounding import build_grounding_file, grounded_findings, report_classes
from radassist.outputs.inputs import BuildInputs
from radassist.outputs.oru import build_oru_file
from radassist.outputs.plan import OutputPlan
from radassist.outputs.sr import SR_CLASS_NAMES, build_sr_file
from radassist.reasons import plain_reason
from radassist.sr.document import SrClass
from radassist.sr.measurement_report import SrClass as ReportClass
from radassist.store.outputs import OutputStore

logger = logging.getLogger(__name__)

@dataclass
class BuiltOutputs:
    """What was built (stored paths) and what was not (the reason), per SR class and for the ORU."""

    sr_files: dict[SrClass, tuple[str, str]] = field(default_factory=dict)
    """SR class -> (SOP Instance UID, stored path)."""
    sr_failures: dict[SrClass, str] = field(default_factory=dict)
    oru_file: tuple[str, str] | None = None
    """(MSH-10, stored path)."""
    oru_failure: str | None = None
    oru_failure_code: str | None = None
    """The builder's own error code (e.g. ``hl7.no_patient_id``) when the ORU was not built."""
    grounding_files: dict[ReportClass, tuple[str, str]] = field(default_factory=dict)
    """SR class -> (SOP Instance UID, stored path) of the measurement report of a grounded draft."""
    grounding_failures: dict[ReportClass, str] = field(default_factory=dict)
    boxes: int = 0
    """The boxes of the grounded draft (0: not grounded, no measurement report)."""

    @property
    def job_sr(self) -> tuple[str, str] | None:
        """The job's own SR (Enhanced when built, else the first class built)."""
        return self.sr_files.get("enhanced") or next(iter(self.sr_files.values()), None)


@dataclass(frozen=True)
class Attempt:
    """One output built (``done``), or why not (``reason``, and the builder's own ``code`` if it gave one)."""

    done: tuple[str, str] | None = None
    reason: str | None = None
    code: str | None = None


def _attempt(what: str, build: Callable[[], tuple[str, str]]) -> Attempt:
    try:
        return Attempt(done=build())
    except Exception as exc:  # noqa: BLE001 -- each output fails on its own, with its reason
        if not isinstance(exc, (ValueError, TypeError, RadAssistError)):
            logger.exception("building the %s failed unexpectedly", what)
        logger.warning("%s not built", what)
        return Attempt(reason=f"the {what} could not be built: {plain_reason(exc)}",
                       code=exc.code if isinstance(exc, RadAssistError) else None)


def build_outputs(
    plan: OutputPlan, inputs: BuildInputs | str, draft: Draft, job_id: uuid.UUID, hl7: Hl7Settings,
    now: dt.datetime, outputs: OutputStore,
) -> BuiltOutputs:
    """Each SR class of ``plan`` and its ORU, built and stored; ``inputs`` is the reason when they
    could not be read, and then every output fails with it."""
    built = BuiltOutputs()
    for sr_class in plan.sr_classes:
        what = f"{SR_CLASS_NAMES[sr_class]} SR"
        if isinstance(inputs, str):
            built.sr_failures[sr_class] = f"the {what} could not be built: {inputs}"
            continue
        attempt = _attempt(what, partial(build_sr_file, inputs, draft, job_id, sr_class, now, outputs))
        if attempt.done is not None:
            built.sr_files[sr_class] = attempt.done
        else:
            built.sr_failures[sr_class] = attempt.reason or what
    _build_grounding(built, plan, inputs, draft, job_id, now, outputs)
    if plan.send_hl7:
        if isinstance(inputs, str):
            built.oru_failure = f"the ORU^R01 could not be built: {inputs}"
        else:
            attempt = _attempt("ORU^R01", partial(build_oru_file, inputs, draft, job_id, hl7, now, outputs))
            built.oru_file, built.oru_failure, built.oru_failure_code = attempt.done, attempt.reason, attempt.code
    return built


def _build_grounding(
    built: BuiltOutputs, plan: OutputPlan, inputs: BuildInputs | str, draft: Draft, job_id: uuid.UUID,
    now: dt.datetime, outputs: OutputStore,
) -> None:
    """The measurement report of a grounded draft, in each SR class of ``plan`` that can carry it."""
    classes = report_classes(plan.sr_classes)
    try:
        findings = grounded_findings(draft.generation)
    except ValueError as exc:
        reason = f"the grounding record of the draft cannot be read: {plain_reason(exc)}"
        logger.warning("measurement report not built: the draft's grounding record is malformed")
        built.grounding_failures.update(dict.fromkeys(classes, reason))
        return
    built.boxes = sum(len(finding.boxes) for finding in findings)
    if not findings:
        return
    for sr_class in classes:
        what = f"{SR_CLASS_NAMES[sr_class]} measurement report"
        if isinstance(inputs, str):
            built.grounding_failures[sr_class] = f"the {what} could not be built: {inputs}"
            continue
        attempt = _attempt(
            what, partial(build_grounding_file, inputs, findings, draft, job_id, sr_class, now, outputs))
        if attempt.done is not None:
            built.grounding_files[sr_class] = attempt.done
        else:
            built.grounding_failures[sr_class] = attempt.reason or what
