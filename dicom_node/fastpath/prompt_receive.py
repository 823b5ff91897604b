"""An acceptor stops waiting for the A-ASSOCIATE-RQ as soon as its connection is gone.

pynetdicom's acceptor thread waits for the request with one blocking ``receive_pdu`` of the whole
ACSE timeout.  A connection closed meanwhile (the peer hung up, the DUL aborted a garbage PDU, the
DUL thread ended) puts nothing on the queue it waits on, so the thread, counted among the AE's
active associations, lives out the timeout.  Here the blocking wait is split into short waits;
between them, a DUL thread that ended, or a connection that is closed or being aborted, ends the
wait with None, which pynetdicom treats as the timeout it would otherwise have reached: the
association is killed and its socket shut.

Upstream: ``docs/upstream/0002-acceptor-stops-waiting-when-connection-gone.patch``
(reproduction: ``bench/upstream/repro_acceptor_waits.py``); once pynetdicom has it, this module goes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynetdicom.association import Association

POLL_S = 0.2
"""How often a blocking wait looks at the connection."""


def connection_gone(dul: Any) -> bool:
    """No primitive can come any more: the socket is closed (the DUL is back in Sta1 after Evt17),
    or we sent an A-ABORT and only wait for the close (Sta13, PS3.8 9.2).  Sta1 alone is not
    enough: an acceptor starts there until the DUL takes its transport connection event (Evt5)."""
    state = dul.state_machine.current_state
    sock = dul.socket
    closed = sock is None or sock.socket is None
    return bool(state == "Sta13" or (state == "Sta1" and closed))


def prompt_receive(assoc: Association) -> None:
    """Make ``assoc``'s blocking waits on its DUL end early once the connection is gone."""
    dul = assoc.dul
    original = dul.receive_pdu

    def receive_pdu(wait: bool = False, timeout: float | None = None) -> Any:
        if not wait:
            return original(wait=False, timeout=timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
            primitive = original(wait=True, timeout=max(remaining, 0.001))
            if primitive is not None:
                return primitive
            if not dul.is_alive() or connection_gone(dul):
                return None
            if deadline is not None and time.monotonic() >= deadline:
                return None

    dul.receive_pdu = receive_pdu  # type: ignore[method-assign]


__all__ = ["connection_gone", "prompt_receive"]
