"""The Verification Service Class as SCP (PS3.4 Annex A): C-ECHO, the test every PACS runs before sending."""

from __future__ import annotations

import logging

from pynetdicom.events import Event

from dicom_node.counters import NodeCounters, count
from dicom_node.statuses import EchoStatus

logger = logging.getLogger(__name__)


def handle_echo(event: Event, counters: NodeCounters | None = None) -> int:
    """C-ECHO: always Success on an accepted association (who may associate was decided already)."""
    count(counters, "echoes")
    logger.info("C-ECHO from %s", str(event.assoc.requestor.ae_title).strip() or "-")
    return int(EchoStatus.SUCCESS)


__all__ = ["handle_echo"]
