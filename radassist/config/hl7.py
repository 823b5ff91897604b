"""``[hl7]``: the RIS, both ways (ORU^R01 out, orders and signed reports in)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from radassist.config.common import Section


class Hl7Settings(Section):
    """The RIS that receives the draft as an HL7 v2 ORU^R01 over MLLP."""

    host: str = ""
    """Host of the RIS's MLLP listener; empty disables HL7 output."""
    port: int = Field(2575, ge=1, le=65535)
    """Its MLLP port."""
    sending_application: str = "RADASSIST"
    """MSH-3 (HD.1): printable, at most 20 characters as written (a separator counts 3)."""
    sending_facility: str = "RADASSIST"
    """MSH-4 (HD.1): printable, at most 20 characters as written (a separator counts 3)."""
    receiving_application: str = "RIS"
    """MSH-5 (HD.1): printable, at most 20 characters as written (a separator counts 3)."""
    receiving_facility: str = "HOSPITAL"
    """MSH-6 (HD.1): printable, at most 20 characters as written (a separator counts 3)."""
    result_status: Literal["R", "P", "I", "S", "A"] = "R"
    """OBR-25: ``R`` = results stored, not yet verified (the default); ``P`` = preliminary."""
    ack_timeout_seconds: float = Field(30.0, gt=0)
    """How long to wait for the RIS's ACK before the attempt counts as failed and is retried."""
    version: Literal["2.5.1", "2.3.1"] = "2.5.1"
    """HL7 version of the ORU^R01 (MSH-12): ``2.5.1``, or ``2.3.1`` for older RIS."""
    accession_field: Literal["OBR-3", "OBR-18"] = "OBR-3"
    """Where the RIS keeps the accession number, in our ORU and in its orders: ``OBR-3`` (filler
    order number) or ``OBR-18`` (placer field 1). Order numbers come from the stored order when known."""
    obx_value_type: Literal["TX", "FT"] = "TX"
    """OBX-2 of the report lines (one OBX per line): ``TX`` text or ``FT`` formatted text."""
    no_order_policy: Literal["hold", "send"] = "hold"
    """A study with no accession number and no RIS order: ``hold`` its ORU (``hl7.no_order``; an admin
    may send it anyway or cancel it), since the RIS cannot match it to an order; ``send`` it as it is."""
    tls: bool = False
    """Send over TLS (MLLP/S); the RIS's certificate is checked against ``tls_ca_file`` (or the system CAs)."""
    tls_ca_file: str = ""
    """PEM file of the CA(s) that sign the RIS's certificate; empty: the system's trust store."""
    tls_cert_file: str = ""
    """PEM client certificate (chain) we present, when the RIS requires one; empty: none."""
    tls_key_file: str = ""
    """PEM private key of ``tls_cert_file``; empty: the key is in the certificate file."""
    tls_check_hostname: bool = True
    """Check that the RIS's certificate names ``host``."""
    listen_host: str = "0.0.0.0"
    """Address of our inbound MLLP listener (orders and signed reports from the RIS)."""
    listen_port: int = Field(0, ge=0, le=65535)
    """Port of the inbound MLLP listener; 0 disables it (``radassist run`` starts it when set)."""
    listen_tls_cert_file: str = ""
    """PEM certificate (chain) of the inbound listener; set it to accept MLLP over TLS only."""
    listen_tls_key_file: str = ""
    """PEM private key of ``listen_tls_cert_file``; empty: the key is in the certificate file."""
    listen_max_connections: int = Field(32, ge=1, le=10000)
    """Most connections the inbound listener serves at once; past it, the connection idle longest
    is closed to make room (or the new one, when every connection is busy with a message)."""
    listen_idle_timeout_seconds: float = Field(300.0, gt=0)
    """A connection that sends nothing for this long between messages is closed."""
    listen_message_timeout_seconds: float = Field(60.0, gt=0)
    """A message must arrive whole (through its end block) within this long of its first byte,
    else the connection is closed; also bounds the TLS handshake."""
    listen_max_message_bytes: int = Field(16 << 20, ge=4096)
    """Largest inbound message; a larger one is answered AR and its connection closed."""
    listen_max_buffered_bytes: int = Field(64 << 20, ge=4096)
    """Bytes of unfinished messages the listener holds across all connections; a connection whose
    next read would pass it is closed, the others keep being served."""

    @field_validator("sending_application", "sending_facility", "receiving_application", "receiving_facility")
    @classmethod
    def _fits_msh(cls, value: str) -> str:
        """MSH-3 to MSH-6 are HD.1 (IS, 20 characters): a value that does not fit would fail every ORU."""
        if not value or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
            raise ValueError("must be 1 or more printable characters")
        if len(value) + 2 * sum(c in "|^~\\&" for c in value) > 20:
            raise ValueError("must be at most 20 characters as written in HL7 (a separator | ^ ~ \\ & counts 3)")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.host)


