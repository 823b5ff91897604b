"""The inbound MLLP listener: orders and signed reports from the RIS (``radassist hl7-listener``).

An asyncio server: each connection may carry many messages, answered in order, one ACK per
message.  Processing (parsing, the database write) runs in a worker thread so that a slow commit
never stalls other connections; the ACK is written only after it returns, so AA always means
"committed".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Callable

from sqlalchemy.orm import Session

from radassist.config import Hl7Settings, Settings
from radassist.errors import ConfigError
from radassist.hl7.ack import AckCode, ErrorCode, build_ack
from radassist.hl7.inbound import decode, handle_message
from radassist.hl7.mllp import END_BLOCK, START_BLOCK

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 << 20
IDLE_TIMEOUT_S = 300.0


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

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the listener is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self._host, self._port, limit=MAX_MESSAGE_BYTES, ssl=self._ssl
        )
        logger.info("HL7 listener on %s:%d", self._host, self.port)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else None
        try:
            while True:
                try:
                    frame = await asyncio.wait_for(reader.readuntil(END_BLOCK), IDLE_TIMEOUT_S)
                except asyncio.IncompleteReadError:
                    return  # the peer closed the connection between messages (or mid-message)
                except asyncio.LimitOverrunError:
                    logger.warning(
                        "inbound message from %s larger than %d bytes; closing", peer, MAX_MESSAGE_BYTES
                    )
                    writer.write(
                        _frame(
                            build_ack(None, AckCode.AR, error=ErrorCode.INTERNAL, text="message too large")
                        )
                    )
                    await writer.drain()
                    return
                start = frame.find(START_BLOCK)
                payload = frame[start + 1 if start != -1 else 0 : -len(END_BLOCK)]
                if not payload.strip():
                    continue
                text = decode(payload)
                outcome = await asyncio.to_thread(
                    handle_message, self._session_factory, text, self._settings, peer=peer
                )
                writer.write(_frame(outcome.ack))
                await writer.drain()
        except (TimeoutError, ConnectionError, ssl.SSLError) as exc:
            logger.info("HL7 connection from %s ended: %s", peer, type(exc).__name__)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _frame(ack: str) -> bytes:
    return START_BLOCK + ack.encode("utf-8") + END_BLOCK


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
    """Serve until SIGINT/SIGTERM (the ``radassist hl7-listener`` entry point)."""
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
