"""Send one HL7 v2 message over MLLP and read the RIS's acknowledgement.

Outcomes are classified by what should happen next: AA (or CA) returns the ACK; AE/CE, a
silent peer, a refused or reset connection, or an ACK for another message are transient and
retried; AR/CR mean the RIS will never take this message, so the delivery fails for good.
With ``[hl7] tls`` the connection is wrapped in TLS (MLLP over TLS, as IHE ATNA's secure node
expects); a failed handshake or an untrusted certificate is transient (``hl7.tls``), since a
certificate fixed by the administrator makes the next retry succeed.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from dataclasses import dataclass

from radassist.config import Hl7Settings
from radassist.errors import ConfigError, PermanentFailure, TransientFailure

logger = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
_MAX_ACK_BYTES = 1 << 20
_MAX_REASON_CHARS = 200


@dataclass(frozen=True)
class Ack:
    """The fields of an ACK that decide the outcome."""

    code: str
    control_id: str
    text: str


def frame(message: str) -> bytes:
    """Wrap ER7 text in the MLLP start and end blocks, UTF-8 encoded (MSH-18 says so)."""
    return START_BLOCK + message.encode("utf-8") + END_BLOCK


def _unescape(value: str, escape: str) -> str:
    for seq, char in (("F", "|"), ("S", "^"), ("T", "&"), ("R", "~"), ("E", escape)):
        value = value.replace(f"{escape}{seq}{escape}", char)
    return value


def parse_ack(er7: str) -> Ack:
    """Read MSA-1, MSA-2 and the RIS's explanation (MSA-3, ERR-8 or ERR-1) from an ACK.

    Plain parsing on purpose: an ACK is tiny, and a RIS may answer in an HL7 version or with
    a structure a strict parser would refuse, which must not hide whether it accepted.
    """
    segments = [s for s in er7.replace("\n", "\r").split("\r") if s]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 8:
        raise ValueError("not an HL7 message")
    field_sep = segments[0][3]
    component_sep = segments[0][4]
    escape = segments[0][6] if len(segments[0]) > 6 else "\\"
    msa = next((s.split(field_sep) for s in segments if s.startswith("MSA" + field_sep)), None)
    if msa is None or len(msa) < 2:
        raise ValueError("the ACK has no MSA segment")
    code = msa[1].strip().upper()
    control_id = msa[2].strip() if len(msa) > 2 else ""
    texts: list[str] = []
    if len(msa) > 3 and msa[3].strip():
        texts.append(msa[3].strip())
    for segment in segments:
        if not segment.startswith("ERR" + field_sep):
            continue
        fields = segment.split(field_sep)
        # v2.5+: ERR-8 user message, else ERR-3 code's text; v2.3: ERR-1.
        for index in (8, 3, 1):
            if len(fields) > index and fields[index].strip():
                value = fields[index]
                if index in (3, 1):
                    parts = value.split(component_sep)
                    value = " ".join(p for p in parts if p and not p.isdigit()) or value
                texts.append(value.strip())
                break
    text = _unescape("; ".join(texts), escape)[:_MAX_REASON_CHARS]
    return Ack(code=code, control_id=control_id, text=text)


def _receive(sock: socket.socket, deadline: float) -> bytes:
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
        if len(buffer) > _MAX_ACK_BYTES:
            raise ValueError("the ACK is larger than 1 MiB")
    start = buffer.find(START_BLOCK)
    end = buffer.find(END_BLOCK)
    return buffer[start + 1 if start != -1 and start < end else 0 : end]


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
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except TimeoutError:
        raise TransientFailure(
            f"connecting to the RIS at {where} timed out", code="hl7.unreachable"
        ) from None
    except OSError as exc:
        raise TransientFailure(
            f"cannot connect to the RIS at {where}: {exc.strerror or type(exc).__name__}",
            code="hl7.unreachable",
        ) from None
    if ssl_context is not None:
        try:
            sock = ssl_context.wrap_socket(sock, server_hostname=host)
        except (ssl.SSLError, ssl.CertificateError) as exc:
            sock.close()
            reason = (
                getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or type(exc).__name__
            )
            raise TransientFailure(f"TLS with the RIS at {where} failed: {reason}", code="hl7.tls") from None
        except OSError as exc:
            sock.close()
            raise TransientFailure(
                f"TLS with the RIS at {where} failed: {exc.strerror or type(exc).__name__}",
                code="hl7.unreachable",
            ) from None
    with sock:
        try:
            sock.sendall(frame(message))
            raw = _receive(sock, time.monotonic() + timeout_s)
        except TimeoutError:
            raise TransientFailure(
                f"no ACK from the RIS at {where} within {timeout_s:g}s", code="hl7.timeout"
            ) from None
        except ValueError as exc:
            raise TransientFailure(
                f"unusable reply from the RIS at {where}: {exc}", code="hl7.ack.invalid"
            ) from None
        except OSError as exc:
            raise TransientFailure(
                f"connection to the RIS at {where} failed: {exc.strerror or type(exc).__name__}",
                code="hl7.unreachable",
            ) from None
    try:
        ack_text = raw.decode("utf-8")
    except UnicodeDecodeError:
        ack_text = raw.decode("latin-1")
    try:
        ack = parse_ack(ack_text)
    except ValueError as exc:
        raise TransientFailure(
            f"unusable ACK from the RIS at {where}: {exc}", code="hl7.ack.invalid"
        ) from None

    if ack.control_id and ack.control_id != control_id:
        raise TransientFailure(
            f"the RIS acknowledged another message (MSA-2 {ack.control_id!r}, expected {control_id!r})",
            code="hl7.ack.mismatch",
        )
    reason = f": {ack.text}" if ack.text else ""
    if ack.code in ("AA", "CA"):
        if not ack.control_id:
            raise TransientFailure("the RIS's ACK has an empty MSA-2", code="hl7.ack.mismatch")
        logger.info("ORU acknowledged by the RIS (%s), control_id=%s", ack.code, control_id)
        return ack_text
    if ack.code in ("AE", "CE"):
        raise TransientFailure(f"the RIS answered {ack.code}{reason}", code="hl7.nack.ae")
    if ack.code in ("AR", "CR"):
        raise PermanentFailure(f"the RIS rejected the message ({ack.code}){reason}", code="hl7.nack.ar")
    raise TransientFailure(f"the RIS answered an unknown MSA-1 {ack.code[:4]!r}", code="hl7.ack.invalid")
