"""pynetdicom: an exception in a DUL state machine action ends the DUL thread instead of aborting.

    python bench/upstream/repro_state_machine_error.py        # the installed pynetdicom
    PYTHONPATH=/path/to/pynetdicom-checkout python bench/upstream/repro_state_machine_error.py

A stock pynetdicom SCP (``AE.start_server``) receives an A-ASSOCIATE-RQ whose presentation context
ID is even (PS3.8 9.3.2.2 wants odd IDs).  Converting it to a primitive raises ValueError in the
state machine's AE-6, outside the reactor's guard: the DUL thread ends with an uncaught exception
and the peer gets no answer until the ACSE timeout closes the connection.  With
``docs/upstream/0001-dul-abort-on-state-machine-error.patch`` the peer gets an A-ABORT at once.

Exit status 1 when the bug shows, 0 when it does not.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

import pynetdicom
from _peer import associate_rq, free_port
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

ACSE_TIMEOUT = 10.0
A_ABORT = b"\x07"


def main() -> int:
    uncaught: list[str] = []
    threading.excepthook = lambda args: uncaught.append(f"{args.exc_type.__name__}: {args.exc_value}")
    ae = AE(ae_title="ANY-SCP")
    ae.acse_timeout = ACSE_TIMEOUT
    ae.add_supported_context(Verification)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False)
    try:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.settimeout(ACSE_TIMEOUT + 5)
            sock.sendall(associate_rq(context_id=2))
            try:
                answer = sock.recv(10)
            except OSError:
                answer = b""
        waited = time.monotonic() - started
    finally:
        server.shutdown()
    print(f"pynetdicom {pynetdicom.__version__} from {pynetdicom.__file__}")
    aborted = answer[:1] == A_ABORT
    print(f"answer after {waited:.2f} s: {'A-ABORT' if aborted else answer[:10] or 'none (closed)'}")
    print(f"uncaught exceptions in pynetdicom's threads: {uncaught or 'none'}")
    bug = bool(uncaught) or not aborted
    print("BUG: the DUL thread died instead of aborting" if bug else "OK: the association was aborted")
    return 1 if bug else 0


if __name__ == "__main__":
    sys.exit(main())
