"""Who may associate: per called AE title, an allowlist of calling AE titles and networks.

Decided once per association, on the A-ASSOCIATE-RQ, before any data is accepted.  Refusals use
the PS3.8 Table 9-21 reasons a sender's log can show: called AE title not recognised (ours is
another), calling AE title not recognised (an unknown sender, or a known title from a host it
is not allowed to call from), and transient refusals while an admin paused the sender, while the
disk is nearly full, or while every association slot is taken.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radassist.actions.intake import paused_ae_titles
from radassist.config import AllowedCaller, Settings
from radassist.pipelines import ae_titles


@dataclass(frozen=True)
class Refusal:
    """An A-ASSOCIATE-RJ: PS3.8 result, source and reason, our stable code for it, and when it is sent."""

    result: int
    source: int
    reason: int
    code: str
    when: str


MALFORMED_REQUEST = Refusal(
    0x01, 0x02, 0x01, "request.malformed", "the A-ASSOCIATE-RQ proposes no presentation context, or one without a "
    "transfer syntax (PS3.8 9.3.2)"
)
"""Rejected-permanent, service provider (ACSE), no reason given."""
CALLED_AE_UNKNOWN = Refusal(0x01, 0x01, 0x07, "called_ae.unknown", "the called AE title is none of ours")
"""Rejected-permanent, service user, "called-AE-title-not-recognized"."""
CALLER_UNKNOWN = Refusal(
    0x01, 0x01, 0x03, "caller.unknown", "no allowed caller has this calling AE title (for this called AE title)"
)
"""Rejected-permanent, service user, "calling-AE-title-not-recognized"."""
CALLER_HOST_NOT_ALLOWED = Refusal(
    0x01, 0x01, 0x03, "caller.host_not_allowed", "the calling AE title is allowed, but not from this address"
)
"""Same PS3.8 reason as :data:`CALLER_UNKNOWN`, another code."""
INTAKE_PAUSED = Refusal(0x02, 0x01, 0x01, "intake.paused", "an admin paused intake from this calling AE title")
"""Rejected-transient, service user, no reason given: the sender retries later."""
LOW_DISK = Refusal(0x02, 0x03, 0x01, "storage.low_disk", "free disk space is below [storage] min_free_bytes / _percent")
"""Rejected-transient, service provider (presentation), "temporary-congestion": retry later."""
TOO_MANY_ASSOCIATIONS = Refusal(
    0x02, 0x03, 0x02, "associations.limit", "every one of [dicom] max_associations is taken by an accepted association"
)
"""Rejected-transient, service provider (presentation), "local-limit-exceeded": retry later."""

REFUSALS: tuple[Refusal, ...] = (
    MALFORMED_REQUEST,
    CALLED_AE_UNKNOWN,
    CALLER_UNKNOWN,
    CALLER_HOST_NOT_ALLOWED,
    INTAKE_PAUSED,
    LOW_DISK,
    TOO_MANY_ASSOCIATIONS,
)
"""Every refusal, in the order an A-ASSOCIATE-RQ is checked (:func:`dicom_node.association_events.on_requested`)."""


def malformed_request(primitive: object) -> Refusal | None:
    """PS3.8 9.3.2: an A-ASSOCIATE-RQ proposes one or more presentation contexts, each with one or
    more transfer syntaxes.  pynetdicom's negotiation raised IndexError in the association thread
    on a context without any (the thread died and the peer got no answer); it is refused here first.
    """
    contexts = list(getattr(primitive, "presentation_context_definition_list", None) or [])
    if not contexts or any(not getattr(cx, "transfer_syntax", None) for cx in contexts):
        return MALFORMED_REQUEST
    return None


logger = logging.getLogger(__name__)


class IntakePauses:
    """The calling AE titles an admin paused on the web page, re-read at most every few seconds.

    One query per association would be cheap, but a burst of associations from an auto-router
    should not each wait for the database; a pause takes effect within ``ttl_seconds``.
    If the database cannot be read the last known list stands (the stores would fail anyway).
    """

    def __init__(self, session_factory: sessionmaker[Session], ttl_seconds: float = 2.0) -> None:
        self._session_factory = session_factory
        self._ttl = ttl_seconds
        self._titles: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def is_paused(self, calling_ae: str) -> bool:
        with self._lock:
            if time.monotonic() - self._read_at >= self._ttl:
                try:
                    with self._session_factory() as session:
                        self._titles = frozenset(p.ae_title for p in paused_ae_titles(session))
                except SQLAlchemyError as exc:
                    logger.warning("could not read paused AE titles (%s); keeping the last list", type(exc).__name__)
                self._read_at = time.monotonic()
            return calling_ae.strip() in self._titles


class CallerPolicy:
    """The allowlist from ``[dicom]``: which callers may call which of our AE titles, from where."""

    def __init__(self, settings: Settings) -> None:
        self.our_titles = frozenset(ae_titles(settings))
        self.allow_any = settings.dicom.allow_any_caller
        self._entries: list[tuple[AllowedCaller, ipaddress.IPv4Network | ipaddress.IPv6Network]] = [
            (entry, ipaddress.ip_network(entry.network, strict=False)) for entry in settings.dicom.allowed_callers
        ]

    def check(self, calling_ae: str, called_ae: str, peer_host: str) -> Refusal | None:
        """None when the association may go ahead, else the refusal to send."""
        calling_ae, called_ae = calling_ae.strip(), called_ae.strip()
        if called_ae not in self.our_titles:
            return CALLED_AE_UNKNOWN
        if self.allow_any:
            return None
        try:
            address = ipaddress.ip_address(peer_host)
        except ValueError:
            return CALLER_HOST_NOT_ALLOWED
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        known_title = False
        for entry, network in self._entries:
            if entry.ae_title != "*" and entry.ae_title != calling_ae:
                continue
            if entry.called_ae_titles and called_ae not in entry.called_ae_titles:
                continue
            known_title = True
            if address.version == network.version and address in network:
                return None
        return CALLER_HOST_NOT_ALLOWED if known_title else CALLER_UNKNOWN
