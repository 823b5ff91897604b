"""HL7 v2 output: the ORU^R01 carrying the draft, and its MLLP delivery to the RIS."""

from radassist.hl7.mllp import send_mllp
from radassist.hl7.oru import build_oru

__all__ = ["build_oru", "send_mllp"]
