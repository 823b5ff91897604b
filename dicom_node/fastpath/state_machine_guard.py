"""An exception in a DUL state machine action aborts the association instead of ending the DUL thread.

pynetdicom's DUL reactor aborts the association when decoding a PDU raises, but calls the state
machine outside that guard: a PDU the machine has no transition for in its state (an
A-ASSOCIATE-AC sent to an acceptor, garbage after the A-ASSOCIATE-RQ) or cannot build a primitive
from ends the DUL thread, and the peer gets no answer.  Here the machine's ``do_action`` does what
the reactor does for an undecodable PDU: send an A-ABORT (source: service provider), stop both
reactors.  Only the exception's class is logged: its message may quote what the peer sent.

Upstream: ``docs/upstream/0001-dul-abort-on-state-machine-error.patch``
(reproduction: ``bench/upstream/repro_state_machine_error.py``); once pynetdicom has it, this
module goes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pynetdicom.pdu import A_ABORT_RQ

if TYPE_CHECKING:
    from pynetdicom.association import Association

logger = logging.getLogger(__name__)


def guard_state_machine(assoc: Association) -> None:
    """Wrap ``assoc``'s state machine action so that an exception aborts the association."""
    dul = assoc.dul
    machine = dul.state_machine
    original = machine.do_action

    def do_action(event: str) -> None:
        try:
            original(event)
        except Exception as exc:  # noqa: BLE001 - anything the peer's bytes provoked in the library
            logger.warning(
                "DICOM upper layer could not handle %s in %s (%s); aborting the association",
                event,
                machine.current_state,
                type(exc).__name__,
            )
            abort = A_ABORT_RQ()
            abort.source = 0x02
            abort.reason_diagnostic = 0x00
            try:
                dul.socket.send(abort.encode())  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001 - the peer may be gone already
                pass
            assoc.is_aborted = True
            assoc.is_established = False
            assoc._kill = True
            dul._kill_thread = True

    machine.do_action = do_action  # type: ignore[method-assign]


__all__ = ["guard_state_machine"]
