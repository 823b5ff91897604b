"""Process-wide counts of what the listener did, for readiness pages and tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


@dataclass
class NodeCounters:
    """Counts of associations and instances by outcome; thread-safe."""

    associations_accepted: int = 0
    associations_released: int = 0
    associations_aborted: int = 0
    associations_refused: int = 0
    echoes: int = 0
    instances_stored: int = 0
    instances_duplicate: int = 0
    instances_rejected: int = 0
    instances_failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


def count(counters: NodeCounters | None, name: str) -> None:
    """Add one to ``name`` when there are counters (handlers may run without)."""
    if counters is not None:
        counters.add(name)


__all__ = ["NodeCounters", "count"]
