"""Start and stop the listener: its servers (plain and TLS), their handlers, and a clean shutdown.

The database engine and instance store are built here, from Settings, when the listener starts:
importing this module starts nothing and loads no model code.  With ``[dicom]
pynetdicom_fast_path`` on, the installed pynetdicom is checked first (:mod:`dicom_node.fastpath`),
before any port is bound.
"""

from __future__ import annotations

import logging
import ssl
import time

from sqlalchemy.orm import Session, sessionmaker

from dicom_node import completion_timer, fastpath
from dicom_node.acceptor import NodeRequestHandler, NodeServer, serve
from dicom_node.access import CallerPolicy
from dicom_node.ae import build_ae
from dicom_node.allocator import keep_large_buffers
from dicom_node.associations import AssociationRegistry
from dicom_node.balance import SharedListener
from dicom_node.capacity import DiskGuard
from dicom_node.connections import ConnectionLimits, Connections
from dicom_node.counters import NodeCounters
from dicom_node.group_commit import group_commit_for
from dicom_node.handlers import ListenerState, event_handlers
from dicom_node.processes import SHUTDOWN_GRACE_SECONDS, ListenerProcesses, serve_until_signal
from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.pipelines import ae_titles
from radassist.startup import check_unsynced_instances
from radassist.store.instances import InstanceStore

logger = logging.getLogger(__name__)


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


def request_handler(settings: Settings) -> type[NodeRequestHandler]:
    """The fast path's request handler (checked and installed), or stock pynetdicom's with our hooks."""
    if settings.dicom.pynetdicom_fast_path:
        return fastpath.install()
    return NodeRequestHandler


def start_listener(
    settings: Settings,
    *,
    block: bool = False,
    session_factory: sessionmaker[Session] | None = None,
    counters: NodeCounters | None = None,
    shared: SharedListener | None = None,
    process_index: int = 0,
) -> NodeServer | None:
    """Listen on ``[dicom] host:port`` (and ``tls_port`` when set); return the running plain server
    (None when ``block`` is True, in which case this returns only when the server is shut down).

    ``shared``: serve the sockets of :func:`run_listener`'s first process, as listener process
    number ``process_index``, once every listener process is ready (:mod:`dicom_node.balance`).
    The server carries the listener's shared state (``shared``: counters, session factory, disk
    guard...) and its TLS server (which :func:`stop_listener` stops with it).
    """
    handler = request_handler(settings)
    keep_large_buffers()
    if session_factory is None:
        session_factory = make_sessionmaker(settings)
    counters = counters if counters is not None else NodeCounters()
    dicom = settings.dicom
    store = InstanceStore(settings.storage.instances_dir)
    settings.storage.instances_dir.mkdir(parents=True, exist_ok=True)
    ae = build_ae(settings)
    disk_guard = DiskGuard(settings, session_factory)
    disk_guard.has_room()  # records the starting condition
    state = ListenerState(
        settings, store, session_factory, counters, CallerPolicy(settings),
        AssociationRegistry(dicom.max_associations), disk_guard,
        group_commit_for(
            session_factory, sync=settings.storage.sync, instances_dir=settings.storage.instances_dir,
            in_commit_max_bytes=settings.storage.in_commit_max_bytes,
        ),  # fmt: skip
        completion_timer.for_listener(settings, session_factory),
    )  # fmt: skip
    if not dicom.allow_any_caller and not dicom.allowed_callers:
        logger.warning("no [[dicom.allowed_callers]] configured: every association will be refused")
    load = None
    if shared is not None:
        load = shared.load(process_index)
        load.start_serving()
        shared.listen_together()
    connections = Connections(ConnectionLimits.from_settings(settings), load)
    tls_server: NodeServer | None = None
    if dicom.tls_port:
        tls_shared = (shared.tls, load) if shared is not None and shared.tls is not None and load else None
        tls_server = serve(
            ae, (dicom.host, dicom.tls_port), event_handlers(state, tls=True), request_handler=handler,
            connections=connections, ssl_context=server_ssl_context(settings), shared=tls_shared,
        )  # fmt: skip
        logger.info("DICOM TLS listener on %s:%d", dicom.host, dicom.tls_port)
    plain_shared = (shared.plain, load) if shared is not None and load is not None else None
    server = serve(
        ae, (dicom.host, dicom.port), event_handlers(state), request_handler=handler,
        connections=connections, shared=plain_shared,
    )  # fmt: skip
    server.shared, server.tls_server = state, tls_server
    if state.completion_timer is not None:
        state.completion_timer.start()
    logger.info(
        "DICOM listener %s on %s:%d (max %d associations, %d negotiating; %s)",
        ", ".join(ae_titles(settings)),
        dicom.host,
        dicom.port,
        dicom.max_associations,
        dicom.max_pending_connections,
        "pynetdicom fast path" if dicom.pynetdicom_fast_path else "stock pynetdicom",
    )
    if block:
        # Serve until another thread calls ``stop_listener(server)`` (the socket is then closed).
        while server.socket is not None and server.socket.fileno() != -1:
            time.sleep(0.5)
        return None
    return server


def stop_listener(server: NodeServer, *, grace_seconds: float = SHUTDOWN_GRACE_SECONDS) -> None:
    """Stop accepting, let running associations finish for ``grace_seconds``, then abort the rest.

    Aborting loses nothing acknowledged: Success is only sent after the commit.
    """
    if server.load is not None:
        server.load.stop_serving()  # the other listener processes stop leaving connections to this one
    servers = [s for s in (server.tls_server, server) if s is not None]
    for each in servers:
        each.shutdown()
    # Only established associations may be mid-transfer; a connection still negotiating (or a bare
    # TCP probe) has nothing to lose.
    server.connections.shut_pending()
    associations = [assoc for each in servers for assoc in each.active_associations]
    deadline = time.monotonic() + grace_seconds
    while any(a.is_established for a in associations) and time.monotonic() < deadline:
        time.sleep(0.1)
    for assoc in associations:
        if assoc.is_established:
            logger.warning("aborting an association still open at shutdown")
        if assoc.is_alive():
            assoc.abort()
    server.connections.stop()
    shared = server.shared
    if shared is not None:
        if shared.group_commit is not None:
            shared.group_commit.close()
        if shared.completion_timer is not None:
            shared.completion_timer.stop()  # armed studies are left to the sweep
        bind = shared.session_factory.kw.get("bind")
        if bind is not None:
            bind.dispose()
    logger.info("DICOM listener stopped")


def run_listener(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM, then shut down cleanly (main thread only).

    With ``[dicom] listener_processes`` > 1, this process opens the listening socket(s), starts the
    other processes and hands them the sockets; the least busy process accepts each association
    (:mod:`dicom_node.balance`, :mod:`dicom_node.processes`).
    """
    dicom = settings.dicom
    if dicom.pynetdicom_fast_path and (problems := fastpath.check_compatible()):
        raise fastpath.incompatible(problems)  # before any process starts or any port is bound
    # Before any listener process writes: what is still listed was flushed by a listener that has
    # stopped, or lost in a crash (:mod:`radassist.intake.unsynced`).
    check_unsynced_instances(settings, confirm=True)
    shared: SharedListener | None = None
    siblings: ListenerProcesses | None = None
    if dicom.listener_processes > 1:
        shared = SharedListener.open(
            dicom.host,
            dicom.port,
            dicom.tls_port,
            dicom.listener_processes,
            backlog=NodeServer.request_queue_size * dicom.listener_processes,
        )
        siblings = ListenerProcesses(settings, shared)
    try:
        serve_until_signal(settings, shared, 0, every_second=siblings.replace_dead if siblings else None)
    finally:
        if siblings is not None:
            siblings.stop()
        if shared is not None:
            shared.close()


__all__ = ["run_listener", "server_ssl_context", "start_listener", "stop_listener"]
