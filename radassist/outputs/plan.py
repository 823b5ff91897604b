"""Which outputs a job has: the SR classes its destinations take, and whether an ORU goes to the RIS.

Chosen by the study's pipeline (the AE title it was sent to, :func:`radassist.pipelines.pipeline_for`),
resolved once per build.  Each destination names its SR class; one file is built per class, each with
its own deterministic SOP Instance UID, and the ORU's MSH-10 is fixed by the job: building again
overwrites, never duplicates.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from radassist.config import Destination, Settings
from radassist.pipelines import pipeline_for
from radassist.sr.document import SR_CLASSES, SrClass

RIS_DESTINATION = "ris"
"""The destination name of every ORU delivery (the one ``[hl7]`` RIS)."""


def sr_classes_needed(destinations: Sequence[Destination]) -> list[SrClass]:
    """The SR classes the destinations ask for, Enhanced first; Enhanced alone when there are none."""
    wanted = {dest.sr_class for dest in destinations} or {"enhanced"}
    return [cls for cls in SR_CLASSES if cls in wanted]


def hl7_control_id(job_id: uuid.UUID) -> str:
    """MSH-10 for the job's ORU: fixed by the job id, so a retry is recognisably the same message."""
    return job_id.hex[:20]


@dataclass(frozen=True)
class OutputPlan:
    destinations: tuple[Destination, ...]
    """The ``[[destinations]]`` of the study's pipeline, in configuration order."""
    send_hl7: bool
    """True when an ORU^R01 goes to the RIS."""

    @property
    def sr_classes(self) -> list[SrClass]:
        return sr_classes_needed(self.destinations)


def plan_outputs(settings: Settings, called_ae_title: str | None) -> OutputPlan:
    """The outputs of a study sent to ``called_ae_title``."""
    pipeline = pipeline_for(settings, called_ae_title)
    wanted = set(pipeline.destinations)
    return OutputPlan(tuple(d for d in settings.destinations if d.name in wanted), pipeline.hl7)
