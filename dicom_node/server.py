"""Start and stop the listener: one ThreadedAssociationServer, its handlers, and a clean shutdown.

The database engine and instance store are built here, from Settings, when the listener starts:
importing this module starts nothing and loads no model code.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.transport import ThreadedAssociationServer
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.access import CallerPolicy, IntakePauses
from dicom_node.ae import build_ae
from dicom_node.allocator import keep_large_buffers
from dicom_node.associations import AssociationLog
from dicom_node.balance import AssociationLoad, SharedListener
from dicom_node.capacity import DiskGuard
from dicom_node.handlers import (
    NodeCounters,
    handle_echo,
    handle_store,
    on_aborted,
    on_accepted,
    on_acse_sent,
    on_connection_closed,
    on_released,
    on_requested,
)
from dicom_node.transport import serve
from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.pipelines import ae_titles
from radassist.store.instances import InstanceStore

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0


def event_handlers(
    settings: Settings,
    store: InstanceStore,
    session_factory: sessionmaker[Session],
    counters: NodeCounters,
    *,
    policy: CallerPolicy | None = None,
    disk_guard: DiskGuard | None = None,
    tls: bool = False,
) -> list[Any]:
    """The handler table, each handler with its bound arguments."""
    policy = policy or CallerPolicy(settings)
    association_log = AssociationLog(session_factory)
    return [
        (evt.EVT_REQUESTED, on_requested,
         [policy, association_log, disk_guard, counters, tls, IntakePauses(session_factory)]),
        (evt.EVT_C_STORE, handle_store, [store, session_factory, settings, counters, disk_guard]),
        (evt.EVT_C_ECHO, handle_echo, [counters]),
        (evt.EVT_ACCEPTED, on_accepted, [counters]),
        (evt.EVT_ACSE_SENT, on_acse_sent),
        (evt.EVT_RELEASED, on_released, [counters]),
        (evt.EVT_ABORTED, on_aborted, [counters, association_log]),
        (evt.EVT_CONN_CLOSE, on_connection_closed, [association_log]),
    ]


def server_ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS port's context (PS3.15 Annex B: TLS 1.2 or later, optional client certificates)."""
    dicom = settings.dicom
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(dicom.tls_cert_file, dicom.tls_key_file or None)
    if dicom.tls_ca_file:
        context.load_verify_locations(cafile=dicom.tls_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if dicom.tls_require_client_cert else ssl.CERT_OPTIONAL
    return context


def start_listener(
    settings: Settings,
    *,
    block: bool = False,
    session_factory: sessionmaker[Session] | None = None,
    counters: NodeCounters | None = None,
    shared: SharedListener | None = None,
    process_index: int = 0,
) -> ThreadedAssociationServer | None:
    """Listen on ``[dicom] host:port`` (and ``tls_port`` when set); return the running plain server
    (None when ``block`` is True, in which case this returns only when the server is shut down).

    ``shared``: serve the sockets of :func:`run_listener`'s first process, as listener process
    number ``process_index``, once every listener process is ready (:mod:`dicom_node.balance`).

    The server object carries ``radassist_counters`` (the :class:`NodeCounters`),
    ``radassist_session_factory`` for readiness checks and tests, and ``radassist_tls_server``
    (the TLS server or None), which :func:`stop_listener` stops with it.
    """
    keep_large_buffers()
    if session_factory is None:
        session_factory = make_sessionmaker(settings)
    counters = counters if counters is not None else NodeCounters()
    store = InstanceStore(settings.storage.instances_dir)
    settings.storage.instances_dir.mkdir(parents=True, exist_ok=True)
    ae = build_ae(settings)
    policy = CallerPolicy(settings)
    disk_guard = DiskGuard(settings, session_factory)
    disk_guard.has_room()  # records the starting condition
    handlers = event_handlers(settings, store, session_factory, counters, policy=policy, disk_guard=disk_guard)
    dicom = settings.dicom
    if not dicom.allow_any_caller and not dicom.allowed_callers:
        logger.warning("no [[dicom.allowed_callers]] configured: every association will be refused")
    tls_server: ThreadedAssociationServer | None = None
    plain_socket: tuple[socket.socket, AssociationLoad] | None = None
    tls_socket: tuple[socket.socket, AssociationLoad] | None = None
    if shared is not None:
        load = shared.load(process_index)
        load.start_serving()
        shared.listen_together()
        plain_socket = (shared.plain, load)
        tls_socket = (shared.tls, load) if shared.tls is not None else None
    if dicom.tls_port:
        tls_handlers = event_handlers(
            settings, store, session_factory, counters, policy=policy, disk_guard=disk_guard, tls=True
        )
        tls_server = serve(
            ae,
            (dicom.host, dicom.tls_port),
            tls_handlers,
            ssl_context=server_ssl_context(settings),
            shared=tls_socket,
        )
        logger.info("DICOM TLS listener on %s:%d", dicom.host, dicom.tls_port)
    server = serve(ae, (dicom.host, dicom.port), handlers, shared=plain_socket)
    logger.info(
        "DICOM listener %s on %s:%d (max %d associations)",
        ", ".join(ae_titles(settings)),
        dicom.host,
        dicom.port,
        dicom.max_associations,
    )
    if block:
        # Serve until another thread calls ``server.shutdown()`` (the socket is then closed).
        try:
            while server.socket is not None and server.socket.fileno() != -1:
                time.sleep(0.5)
        finally:
            if tls_server is not None:
                tls_server.shutdown()
        return None
    server.radassist_counters = counters  # type: ignore[attr-defined]
    server.radassist_session_factory = session_factory  # type: ignore[attr-defined]
    server.radassist_tls_server = tls_server  # type: ignore[attr-defined]
    server.radassist_disk_guard = disk_guard  # type: ignore[attr-defined]
    return server


def stop_listener(
    server: ThreadedAssociationServer, *, grace_seconds: float = SHUTDOWN_GRACE_SECONDS
) -> None:
    """Stop accepting, let running associations finish for ``grace_seconds``, then abort the rest.

    Aborting loses nothing acknowledged: Success is only sent after the commit.
    """
    ae: AE = server.ae
    load: AssociationLoad | None = getattr(server, "radassist_load", None)
    if load is not None:
        load.stop_serving()  # the other listener processes stop leaving connections to this one
    tls_server = getattr(server, "radassist_tls_server", None)
    if tls_server is not None:
        tls_server.shutdown()
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
    """Serve until SIGINT or SIGTERM, then shut down cleanly (main thread only).

    With ``[dicom] listener_processes`` > 1, this process opens the listening socket(s), starts the
    other processes and hands them the sockets; the least busy process accepts each association
    (:mod:`dicom_node.balance`).  This one replaces a process that dies, and stops the others when
    it stops.
    """
    dicom = settings.dicom
    shared: SharedListener | None = None
    siblings: _ListenerProcesses | None = None
    if dicom.listener_processes > 1:
        shared = SharedListener.open(
            dicom.host,
            dicom.port,
            dicom.tls_port,
            dicom.listener_processes,
            backlog=ThreadedAssociationServer.request_queue_size * dicom.listener_processes,
        )
        siblings = _ListenerProcesses(settings, shared)
    try:
        _serve_until_signal(settings, shared, 0, every_second=siblings.replace_dead if siblings else None)
    finally:
        if siblings is not None:
            siblings.stop()
        if shared is not None:
            shared.close()


RESTART_AFTER_SECONDS = 10.0
"""A listener process that died is replaced, but not sooner than this after its previous start."""


class _ListenerProcesses:
    """The listener processes other than this one: started, replaced when one dies, stopped."""

    def __init__(self, settings: Settings, shared: SharedListener) -> None:
        self._settings = settings
        self._shared = shared
        self._context = multiprocessing.get_context("spawn")
        self._running: dict[int, multiprocessing.process.BaseProcess] = {}
        self._started_at: dict[int, float] = {}
        for index in range(1, settings.dicom.listener_processes):
            self._start(index)

    def _start(self, index: int) -> None:
        process = self._context.Process(
            target=_child_main, args=(self._settings, self._shared, index), name=f"dicom-listener-{index}"
        )
        process.start()
        self._running[index] = process
        self._started_at[index] = time.monotonic()

    def replace_dead(self) -> bool:
        """Start a new process in place of one that exited (a crash, an OOM kill); always go on serving."""
        for index, process in list(self._running.items()):
            if process.is_alive() or time.monotonic() - self._started_at[index] < RESTART_AFTER_SECONDS:
                continue
            logger.error("listener process %d exited (code %s); starting a new one", index, process.exitcode)
            self._shared.load(index).stop_serving()  # its last count no longer makes the others stand back
            self._start(index)
        return True

    def stop(self) -> None:
        for process in self._running.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self._running.values():
            process.join(SHUTDOWN_GRACE_SECONDS + 5)


def _child_main(settings: Settings, shared: SharedListener, process_index: int) -> None:
    from radassist.logging import configure_logging

    configure_logging(settings.logging.level)
    parent = os.getppid()

    def parent_alive() -> bool:
        """A listener orphaned by a killed first process stops: it would hold the port against a restart."""
        if os.getppid() == parent:
            return True
        logger.error("the first listener process is gone; listener process %d stops", process_index)
        return False

    _serve_until_signal(settings, shared, process_index, every_second=parent_alive)


def _serve_until_signal(
    settings: Settings,
    shared: SharedListener | None,
    process_index: int,
    *,
    every_second: Callable[[], bool] | None = None,
) -> None:
    """Serve until a signal, or until ``every_second`` (called once a second) returns False."""
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %s received, shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server = start_listener(settings, shared=shared, process_index=process_index)
        assert server is not None
        try:
            while not stop.wait(1.0):
                if every_second is not None and not every_second():
                    break
        finally:
            stop_listener(server)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
