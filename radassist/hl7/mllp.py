"""Send one HL7 v2 message over MLLP and read the RIS's acknowledgement.

A frame is the start block (VT, 0x0B), the message as UTF-8, and the end block (FS CR, 0x1C
0x0D); a message holding either block character is never framed (``hl7.frame.unsafe``), since
the RIS would read it as two messages or a shorter one.  What the ACK (or its absence) means is
the table of :mod:`radassist.hl7.ris_ack`: AA/CA return the ACK; AE/CE, silence, outages and
ACKs for another message are transient and retried; AR/CR fail the delivery for good.  With
``[hl7] tls`` the connection is wrapped in TLS (MLLP over TLS, as IHE ATNA's secure node
expects); a failed handshake is transient, as a certificate fixed by the administrator makes the
next retry succeed.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time

from radassist.config import Hl7Settings
from radassist.errors import ConfigError
from radassist.hl7.ris_ack import Ack, failure, judge, parse_ack

__all__ = ["END_BLOCK", "START_BLOCK", "Ack", "client_tls_context", "frame", "parse_ack", "send_mllp"]

logger = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
MAX_ACK_BYTES = 1 << 20


def frame(message: str) -> bytes:
    """Wrap ER7 text in the MLLP start and end blocks, UTF-8 encoded (MSH-18 says so)."""
    data = message.encode("utf-8")
    if START_BLOCK in data or END_BLOCK[:1] in data:
        raise failure(
            "hl7.frame.unsafe",
            "the message holds an MLLP block character (VT or FS), so it was not sent; rebuild it",
        )
    return START_BLOCK + data + END_BLOCK


def client_tls_context(hl7: Hl7Settings) -> ssl.SSLContext | None:
    """The TLS context for connections to the RIS, or None when ``[hl7] tls`` is off.

    Built once per process from the configured CA, client certificate and key files.
    """
    if not hl7.tls:
        return None
    try:
        context = ssl.create_default_context(cafile=hl7.tls_ca_file or None)
        context.check_hostname = hl7.tls_check_hostname
        if hl7.tls_cert_file:
            context.load_cert_chain(hl7.tls_cert_file, hl7.tls_key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[hl7] TLS files cannot be loaded: {type(exc).__name__}: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _connect(host: str, port: int, timeout_s: float, ssl_context: ssl.SSLContext | None) -> socket.socket:
    """A connected (and, with ``ssl_context``, TLS-wrapped) socket to the RIS."""
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except TimeoutError:
        raise failure("hl7.unreachable", f"connecting to the RIS at {where} timed out") from None
    except OSError as exc:
        raise failure("hl7.unreachable", f"cannot connect to the RIS at {where}: {_why(exc)}") from None
    if ssl_context is None:
        return sock
    try:
        return ssl_context.wrap_socket(sock, server_hostname=host)
    except (ssl.SSLError, ssl.CertificateError) as exc:
        sock.close()
        reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise failure("hl7.tls", f"TLS with the RIS at {where} failed: {reason}") from None
    except OSError as exc:
        sock.close()
        raise failure("hl7.unreachable", f"TLS with the RIS at {where} failed: {_why(exc)}") from None


def _receive(sock: socket.socket, deadline: float) -> bytes:
    """The payload of the first whole frame the peer sends before ``deadline``."""
    buffer = b""
    while END_BLOCK not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the peer closed the connection before the ACK ended")
        buffer += chunk
        if len(buffer) > MAX_ACK_BYTES:
            raise ValueError("the ACK is larger than 1 MiB")
    start = buffer.find(START_BLOCK)
    end = buffer.find(END_BLOCK)
    return buffer[start + 1 if start != -1 and start < end else 0 : end]


def _exchange(sock: socket.socket, payload: bytes, timeout_s: float, where: str) -> bytes:
    """Send one frame and return the reply's payload; ``timeout_s`` bounds waiting for the reply."""
    try:
        sock.sendall(payload)
        return _receive(sock, time.monotonic() + timeout_s)
    except TimeoutError:
        raise failure("hl7.timeout", f"no ACK from the RIS at {where} within {timeout_s:g}s") from None
    except ValueError as exc:
        raise failure("hl7.ack.invalid", f"unusable reply from the RIS at {where}: {exc}") from None
    except OSError as exc:
        raise failure("hl7.unreachable", f"connection to the RIS at {where} failed: {_why(exc)}") from None


def _read_ack(raw: bytes, where: str) -> tuple[str, Ack]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    try:
        return text, parse_ack(text)
    except ValueError as exc:
        raise failure("hl7.ack.invalid", f"unusable ACK from the RIS at {where}: {exc}") from None


def send_mllp(
    host: str,
    port: int,
    message: str,
    *,
    control_id: str,
    timeout_s: float,
    ssl_context: ssl.SSLContext | None = None,
) -> str:
    """Send ``message`` to ``host:port``; return the ACK's ER7 text when the RIS accepted it.

    ``timeout_s`` bounds connecting (with the TLS handshake when ``ssl_context`` is given, see
    :func:`client_tls_context`) and, separately, waiting for the whole ACK.
    """
    if not message.startswith("MSH"):
        raise ValueError('Argument "message" must be ER7 text starting with MSH.')
    if timeout_s <= 0:
        raise ValueError('Argument "timeout_s" must be positive.')
    payload = frame(message)
    where = f"{host}:{port}"
    with _connect(host, port, timeout_s, ssl_context) as sock:
        raw = _exchange(sock, payload, timeout_s, where)
    text, ack = _read_ack(raw, where)
    judge(ack, control_id)
    logger.info("ORU acknowledged by the RIS (%s), control_id=%s", ack.code, control_id)
    return text
