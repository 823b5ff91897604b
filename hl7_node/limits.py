"""What one listener process lets its connections hold: slots and buffered bytes.

Past ``[hl7] listen_max_connections``, the connection that has been idle longest (no message in
progress, no ACK pending) is closed to make room, so silent sockets cannot lock out the RIS;
when every connection is busy, the new one is closed.  Bytes of unfinished messages count
against ``[hl7] listen_max_buffered_bytes`` across all connections; a connection whose next read
would pass the bound is closed and the others keep their share.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


class ByteBudget:
    """A bound on the bytes all connections may buffer at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, count: int) -> bool:
        """Reserve ``count`` bytes; False (and nothing reserved) when that would pass the bound."""
        if self.used + count > self.limit:
            return False
        self.used += count
        return True

    def give(self, count: int) -> None:
        self.used = max(0, self.used - count)


@dataclass(eq=False)
class MllpConnection:
    """One accepted connection and what it holds."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: str | None
    buffer: bytearray = field(default_factory=bytearray)
    message_started: float | None = None
    busy: bool = False
    last_active: float = field(default_factory=time.monotonic)
    evicted: bool = False

    @property
    def idle(self) -> bool:
        return not self.buffer and not self.busy


class Slots:
    """The connections being served, at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active: set[MllpConnection] = set()

    def admit(self, connection: MllpConnection) -> tuple[bool, MllpConnection | None]:
        """Whether ``connection`` may be served, and the idle connection to close in its place.

        (True, None): a slot was free; (True, victim): ``victim`` gives up its slot; (False, None):
        every connection is busy and the new one must be closed.
        """
        if len(self.active) < self.limit:
            self.active.add(connection)
            return True, None
        idle = [c for c in self.active if c.idle and not c.evicted]
        if not idle:
            return False, None
        victim = min(idle, key=lambda c: c.last_active)
        victim.evicted = True
        self.active.discard(victim)
        self.active.add(connection)
        return True, victim

    def release(self, connection: MllpConnection) -> None:
        self.active.discard(connection)
