"""HL7 v2 both ways: the ORU^R01 carrying the draft to the RIS over MLLP, and the inbound listener
for the RIS's orders and signed reports."""

from radassist.hl7.mllp import client_tls_context, send_mllp
from radassist.hl7.orders import OrderContext, order_context
from radassist.hl7.oru import build_oru

__all__ = ["OrderContext", "build_oru", "client_tls_context", "order_context", "send_mllp"]
