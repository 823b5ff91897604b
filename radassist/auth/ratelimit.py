"""Failed-login limiting per (user name, client address), in this web process's memory.

A sliding window: more than ``attempts`` failures within ``window_s`` refuse further tries until
the oldest failure ages out.  A successful login clears the count.  Argon2's cost per try already
makes guessing slow; this stops an online dictionary attack cold.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class LoginLimiter:
    def __init__(self, attempts: int, window_s: float) -> None:
        self._attempts = attempts
        self._window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        return failures

    def blocked(self, name: str, client: str) -> bool:
        with self._lock:
            return len(self._recent((name.lower(), client), time.monotonic())) >= self._attempts

    def failed(self, name: str, client: str) -> None:
        with self._lock:
            self._recent((name.lower(), client), time.monotonic()).append(time.monotonic())
            if len(self._failures) > 10_000:  # bounded memory under a spray of names
                self._failures = {k: v for k, v in self._failures.items() if v}

    def succeeded(self, name: str, client: str) -> None:
        with self._lock:
            self._failures.pop((name.lower(), client), None)
