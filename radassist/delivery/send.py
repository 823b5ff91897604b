"""Send one outbox item to its destination; errors say whether a retry can help."""

from __future__ import annotations

from radassist.config import Settings
from radassist.db.tables import Delivery
from radassist.errors import PermanentFailure
from radassist.hl7.mllp import client_tls_context, send_mllp
from radassist.pacs.targets import send_sr_file
from radassist.states import DeliveryChannel
from radassist.store.outputs import OutputStore


def send_delivery(delivery: Delivery, settings: Settings, outputs: OutputStore) -> None:
    """One attempt. Raises TransientFailure (retry later) or PermanentFailure (give up).

    The payload is the file stored when the outputs were built, so every attempt sends the same
    SOP Instance UID (or the same MSH-10), never a rebuilt object.
    """
    if not delivery.payload_path:
        raise PermanentFailure("the delivery has no stored payload", code="delivery.no_payload")
    if delivery.channel in (DeliveryChannel.SR, DeliveryChannel.GROUNDING_SR):
        try:
            destination = settings.destination(delivery.destination)
        except KeyError:
            raise PermanentFailure(
                f"destination {delivery.destination!r} is no longer configured",
                code="delivery.unknown_destination",
            ) from None
        send_sr_file(
            outputs.path(delivery.payload_path), destination, calling_ae_title=settings.dicom.ae_title
        )
        return
    if delivery.channel is DeliveryChannel.HL7:
        if not settings.hl7.enabled:
            raise PermanentFailure("HL7 output is no longer configured", code="delivery.unknown_destination")
        send_mllp(
            settings.hl7.host,
            settings.hl7.port,
            outputs.read(delivery.payload_path).decode("utf-8"),
            control_id=delivery.control_id or "",
            timeout_s=settings.hl7.ack_timeout_seconds,
            ssl_context=client_tls_context(settings.hl7),
        )
        return
    raise PermanentFailure(f"unknown channel {delivery.channel}", code="delivery.unknown_channel")
