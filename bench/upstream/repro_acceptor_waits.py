"""pynetdicom: an acceptor waits the whole ACSE timeout for an A-ASSOCIATE-RQ after its connection is gone.

    python bench/upstream/repro_acceptor_waits.py        # the installed pynetdicom
    PYTHONPATH=/path/to/pynetdicom-checkout python bench/upstream/repro_acceptor_waits.py

A stock pynetdicom SCP with ``maximum_associations = 2`` gets two connections that close without
sending anything (a port scanner, a load balancer's health check).  Each acceptor thread waits
for the request with one blocking ``receive_pdu`` of the ACSE timeout, and is counted among the
AE's active associations meanwhile: a real peer that comes next is refused ("local limit
exceeded").  With ``docs/upstream/0002-acceptor-stops-waiting-when-connection-gone.patch`` the
threads end as soon as the connections are gone and the peer is accepted.

Exit status 1 when the bug shows, 0 when it does not.
"""

from __future__ import annotations

import socket
import sys
import time

import pynetdicom
from _peer import free_port
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

ACSE_TIMEOUT = 20.0
SETTLE = 2.0
"""How long the closed connections get to be noticed before the real peer comes."""


def main() -> int:
    ae = AE(ae_title="ANY-SCP")
    ae.acse_timeout = ACSE_TIMEOUT
    ae.maximum_associations = 2
    ae.add_supported_context(Verification)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False)
    try:
        for _ in range(2):
            socket.create_connection(("127.0.0.1", port)).close()
        time.sleep(SETTLE)
        lingering = len(server.active_associations)
        peer = AE(ae_title="REPRO")
        peer.add_requested_context(Verification)
        assoc = peer.associate("127.0.0.1", port, ae_title="ANY-SCP")
        accepted = assoc.is_established
        if accepted:
            assoc.release()
    finally:
        server.shutdown()
    print(f"pynetdicom {pynetdicom.__version__} from {pynetdicom.__file__}")
    print(f"acceptor threads {SETTLE:g} s after both connections closed: {lingering}")
    print(f"the next real association: {'accepted' if accepted else 'refused'}")
    bug = lingering > 0 or not accepted
    print("BUG: closed connections hold association slots" if bug else "OK: closed connections hold nothing")
    return 1 if bug else 0


if __name__ == "__main__":
    sys.exit(main())
