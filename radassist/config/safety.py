"""``[safety]``: what happens to a draft when a consistency or output check fires.

Each check has one policy: ``hold`` (nothing is built or sent; the job waits as ``needs_review``
until a radiologist releases or discards the draft), ``annotate`` (delivered, with the warning
stated in the SR's Findings and in an ORU NTE) or ``record`` (kept with the draft and shown on the
worklist only).  Output that holds no text at all stays a failure: there is nothing to review.
"""

from __future__ import annotations

from typing import Literal

from radassist.config.common import Section

Policy = Literal["hold", "annotate", "record"]


class SafetySettings(Section):
    """The policy of each check on a draft (``hold``, ``annotate`` or ``record``)."""

    anatomy: Policy = "hold"
    """The report describes a body region the study did not image (judged from the prompt profile,
    BodyPartExamined, the descriptions and the modality): a chest report on a mammogram or head CT."""
    laterality: Policy = "hold"
    """The report names only the side other than the one every image is labelled with."""
    sex: Policy = "hold"
    """The report describes an organ the patient's recorded sex (PatientSex) does not have."""
    truncated: Policy = "hold"
    """The model stopped at ``[model] max_new_tokens``: the text may be cut off mid-sentence."""
    repetitive: Policy = "hold"
    """The model repeated a word or phrase over and over instead of reporting."""
