"""The inbound MLLP listener: accept, frame, hand each message to :mod:`radassist.ris`, answer.

An asyncio server: each connection may carry many messages, answered in order, one ACK per
message.  A frame ends at the end block (FS CR) and its message starts after the first start
block (VT).  Processing (parsing, the database write) runs in a worker thread so that a slow
commit never stalls other connections; the ACK is written only after it returns, so AA always
means "committed".  Limits, all in ``[hl7]``: connection slots and the bound on buffered bytes
(:mod:`hl7_node.limits`), an idle timeout between messages, a timeout for a message to arrive
whole, and a largest message (answered AR).  Each connection closed by a limit leaves one log line
naming the peer address and the limit; the other connections keep being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from hl7_node.limits import ByteBudget, MllpConnection, Slots
from radassist.config import Hl7Settings, Settings
from radassist.errors import ConfigError
from radassist.hl7.mllp import END_BLOCK, START_BLOCK
from radassist.ris.reading import decode
from radassist.ris.receive import answer, handle_message
from radassist.ris.refusals import InboundProblem

logger = logging.getLogger(__name__)

READ_CHUNK = 65536
"""Bytes read at once; asyncio holds at most twice this per connection outside the byte budget."""


class Closed(Exception):
    """A limit closed the connection; the message says which, without patient data."""


class Hl7Listener:
    """An MLLP server bound to ``host:port``; ``port=0`` picks a free one (see :attr:`port`)."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        settings: Hl7Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._settings = settings
        self._host = settings.listen_host if host is None else host
        self._port = settings.listen_port if port is None else port
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self.slots = Slots(settings.listen_max_connections)
        self.budget = ByteBudget(settings.listen_max_buffered_bytes)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the listener is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection,
            self._host,
            self._port,
            limit=READ_CHUNK,
            ssl=self._ssl,
            ssl_handshake_timeout=self._settings.listen_message_timeout_seconds if self._ssl else None,
        )
        logger.info("HL7 listener on %s:%d", self._host, self.port)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        """Stop listening and end every connection."""
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else None
        connection = MllpConnection(reader, writer, peer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        admitted, victim = self.slots.admit(connection)
        if victim is not None:
            logger.info(
                "HL7 connection from %s closed: idle, its slot given to %s ([hl7] listen_max_connections=%d)",
                victim.peer,
                peer,
                self.slots.limit,
            )
            victim.writer.close()
        try:
            if not admitted:
                logger.warning(
                    "HL7 connection from %s refused: all %d connections are busy ([hl7] listen_max_connections)",
                    peer,
                    self.slots.limit,
                )
                return
            await self._serve(connection)
        except Closed as limit:
            logger.warning("HL7 connection from %s closed: %s", peer, limit)
        except (TimeoutError, ConnectionError, ssl.SSLError) as exc:
            logger.info("HL7 connection from %s ended: %s", peer, type(exc).__name__)
        finally:
            self.slots.release(connection)
            self.budget.give(len(connection.buffer))
            connection.buffer.clear()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, connection: MllpConnection) -> None:
        while True:
            frame = await self._next_frame(connection)
            if frame is None:
                return
            start = frame.find(START_BLOCK)
            payload = frame[start + 1 if start != -1 else 0 :]
            if not payload.strip():
                continue
            connection.busy = True
            try:
                outcome = await asyncio.to_thread(
                    handle_message,
                    self._session_factory,
                    decode(payload),
                    self._settings,
                    peer=connection.peer,
                )
                connection.writer.write(START_BLOCK + outcome.ack.encode("utf-8") + END_BLOCK)
                await connection.writer.drain()
            finally:
                connection.busy = False
                connection.last_active = time.monotonic()

    def _deadline(self, connection: MllpConnection) -> float:
        if connection.message_started is None:
            return self._settings.listen_idle_timeout_seconds
        return connection.message_started + self._settings.listen_message_timeout_seconds - time.monotonic()

    async def _refuse_too_large(self, connection: MllpConnection) -> None:
        ack = answer(None, InboundProblem("too_large"), self._settings)
        connection.writer.write(START_BLOCK + ack.encode("utf-8") + END_BLOCK)
        with contextlib.suppress(ConnectionError):
            await connection.writer.drain()
        raise Closed(
            f"a message passed {self._settings.listen_max_message_bytes} bytes ([hl7] listen_max_message_bytes)"
        )

    async def _next_frame(self, connection: MllpConnection) -> bytes | None:
        """The next frame's bytes (without the end block), or None when the peer closed."""
        settings, buffer = self._settings, connection.buffer
        while True:
            end = buffer.find(END_BLOCK)
            if end != -1:
                frame = bytes(buffer[:end])
                del buffer[: end + len(END_BLOCK)]
                self.budget.give(end + len(END_BLOCK))
                connection.message_started = time.monotonic() if buffer else None
                return frame
            if len(buffer) > settings.listen_max_message_bytes:
                await self._refuse_too_large(connection)
            timeout = self._deadline(connection)
            try:
                chunk = await asyncio.wait_for(connection.reader.read(READ_CHUNK), max(timeout, 0))
            except TimeoutError:
                if connection.message_started is None:
                    raise Closed(
                        f"idle for {settings.listen_idle_timeout_seconds:g}s ([hl7] listen_idle_timeout_seconds)"
                    ) from None
                raise Closed(
                    f"a message did not arrive whole within {settings.listen_message_timeout_seconds:g}s "
                    "([hl7] listen_message_timeout_seconds)"
                ) from None
            if not chunk:
                return None  # the peer closed the connection between messages (or mid-message)
            if not self.budget.take(len(chunk)):
                raise Closed(
                    f"the listener holds {self.budget.used} bytes of unfinished messages "
                    "([hl7] listen_max_buffered_bytes)"
                )
            buffer += chunk
            connection.last_active = time.monotonic()
            if connection.message_started is None:
                connection.message_started = connection.last_active


def server_tls_context(hl7: Hl7Settings) -> ssl.SSLContext | None:
    """TLS for the listener when ``[hl7] listen_tls_cert_file`` is set (else plain MLLP)."""
    if not hl7.listen_tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(hl7.listen_tls_cert_file, hl7.listen_tls_key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[hl7] listener TLS files cannot be loaded: {type(exc).__name__}") from None
    return context


def run_listener(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM (``radassist hl7-listener``, ``python -m hl7_node``)."""
    from radassist.db.engine import make_sessionmaker

    if not settings.hl7.listen_port:
        raise SystemExit("radassist: [hl7] listen_port is not set; the HL7 listener has nothing to do")
    sessions = make_sessionmaker(settings)
    listener = Hl7Listener(sessions, settings.hl7, ssl_context=server_tls_context(settings.hl7))

    async def main() -> None:
        await listener.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        serving = asyncio.create_task(listener.serve_forever())
        await stop.wait()
        serving.cancel()
        await listener.close()
        logger.info("HL7 listener stopped")

    asyncio.run(main())
