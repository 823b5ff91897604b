"""Start and stop the listener: one ThreadedAssociationServer, its handlers, and a clean shutdown.

The database engine and instance store are built here, from Settings, when the listener starts:
importing this module starts nothing and loads no model code.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.transport import ThreadedAssociationServer
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.ae import build_ae
from dicom_node.handlers import NodeCounters, handle_echo, handle_store, on_aborted, on_accepted, on_released
from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.store.instances import InstanceStore

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0


def event_handlers(
    settings: Settings,
    store: InstanceStore,
    session_factory: sessionmaker[Session],
    counters: NodeCounters,
) -> list[Any]:
    """The handler table, each handler with its bound arguments."""
    return [
        (evt.EVT_C_STORE, handle_store, [store, session_factory, settings, counters]),
        (evt.EVT_C_ECHO, handle_echo, [counters]),
        (evt.EVT_ACCEPTED, on_accepted, [counters]),
        (evt.EVT_RELEASED, on_released, [counters]),
        (evt.EVT_ABORTED, on_aborted, [counters]),
    ]


def start_listener(
    settings: Settings,
    *,
    block: bool = False,
    session_factory: sessionmaker[Session] | None = None,
    counters: NodeCounters | None = None,
) -> ThreadedAssociationServer | None:
    """Listen on ``[dicom] host:port``; return the running server (None when ``block`` is True,
    in which case this returns only when the server is shut down).

    The server object carries ``radassist_counters`` (the :class:`NodeCounters`) and
    ``radassist_session_factory`` for readiness checks and tests.
    """
    if session_factory is None:
        session_factory = make_sessionmaker(settings)
    counters = counters if counters is not None else NodeCounters()
    store = InstanceStore(settings.storage.instances_dir)
    settings.storage.instances_dir.mkdir(parents=True, exist_ok=True)
    ae = build_ae(settings)
    handlers = event_handlers(settings, store, session_factory, counters)
    address = (settings.dicom.host, settings.dicom.port)
    logger.info(
        "DICOM listener %s on %s:%d (max %d associations)",
        settings.dicom.ae_title,
        settings.dicom.host,
        settings.dicom.port,
        settings.dicom.max_associations,
    )
    if block:
        ae.start_server(address, block=True, evt_handlers=handlers)
        return None
    server = ae.start_server(address, block=False, evt_handlers=handlers)
    assert server is not None
    server.radassist_counters = counters  # type: ignore[attr-defined]
    server.radassist_session_factory = session_factory  # type: ignore[attr-defined]
    return server


def stop_listener(
    server: ThreadedAssociationServer, *, grace_seconds: float = SHUTDOWN_GRACE_SECONDS
) -> None:
    """Stop accepting, let running associations finish for ``grace_seconds``, then abort the rest.

    Aborting loses nothing acknowledged: Success is only sent after the commit.
    """
    ae: AE = server.ae
    server.shutdown()
    deadline = time.monotonic() + grace_seconds
    # Only established associations may be mid-transfer; one still negotiating (or a bare TCP
    # probe) has nothing to lose and would otherwise hold shutdown until the ACSE timeout.
    while any(a.is_established for a in ae.active_associations) and time.monotonic() < deadline:
        time.sleep(0.1)
    for assoc in ae.active_associations:
        if assoc.is_established:
            logger.warning("aborting an association still open at shutdown")
        assoc.abort()
    session_factory = getattr(server, "radassist_session_factory", None)
    bind = getattr(session_factory, "kw", {}).get("bind") if session_factory is not None else None
    if bind is not None:
        bind.dispose()
    logger.info("DICOM listener stopped")


def run_listener(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM, then shut down cleanly (main thread only)."""
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %s received, shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server = start_listener(settings)
        assert server is not None
        try:
            while not stop.wait(1.0):
                pass
        finally:
            stop_listener(server)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
