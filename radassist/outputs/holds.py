"""Outputs that must not go yet: the delivery row is written ``held`` with the reason, while the
job's other outputs go out.

An ORU^R01 for a study with no PatientID cannot be built (``hl7.no_patient_id``): the RIS could not
file it.  One for a study with no accession number and no RIS order is built but held
(``hl7.no_order``, by ``[hl7] no_order_policy``): the RIS could not match it to an order.  An admin
sends a built one anyway, or cancels either; the job stays ``delivering`` meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from radassist.config import Hl7Settings
from radassist.hl7.study_values import whole
from radassist.outputs.inputs import BuildInputs

NO_ORDER = "hl7.no_order"
NO_PATIENT_ID = "hl7.no_patient_id"
HOLDING_BUILD_CODES = frozenset({NO_PATIENT_ID})
"""Builder errors that hold the output (the study lacks what the receiver needs) instead of failing it."""


@dataclass(frozen=True)
class Hold:
    code: str
    message: str


def oru_hold(inputs: BuildInputs | str, hl7: Hl7Settings) -> Hold | None:
    """Why a built ORU must wait, or None when it may go."""
    if hl7.no_order_policy != "hold" or isinstance(inputs, str) or not inputs.sources:
        return None
    if inputs.order is not None or whole(inputs.sources[0].get("AccessionNumber")):
        return None
    return Hold(NO_ORDER, "the study has no accession number and the RIS sent no order for it, so the RIS "
                          "could not match this result to an order: held until an admin sends it anyway or "
                          "cancels it")


def failed_build_hold(code: str | None, reason: str | None) -> Hold | None:
    """A builder's failure that holds the output instead (its reason kept), or None."""
    if code in HOLDING_BUILD_CODES:
        return Hold(code or "", f"{reason or 'the output could not be built'}; an admin may cancel it")
    return None
