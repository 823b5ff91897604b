"""Times a few of the listener's functions in every process it starts, for the listener benches.

Python imports ``sitecustomize`` at start-up from the first folder on ``sys.path`` that holds one.
``bench/timed_parts.py`` puts this folder on ``PYTHONPATH`` and names the functions in the
environment, so the wrappers reach the listener's spawned processes too, which a ``-c`` wrapper
around the first process would not.  Without ``RADASSIST_BENCH_TIMINGS`` it does nothing, so any
other program started with the same environment (``radassist db upgrade``) is left as it is.

Each process appends ``(part, thread, start, end)`` (``time.monotonic_ns``: one clock for all
processes) for every timed call and writes them to ``<pid>.json`` in that folder, twice a second
and at exit: a listener stopped by a signal still leaves what it timed.
"""

from __future__ import annotations

import os

_FOLDER = os.environ.get("RADASSIST_BENCH_TIMINGS")

if _FOLDER:
    import atexit
    import functools
    import importlib
    import json
    import threading
    import time
    from collections.abc import Callable
    from typing import Any

    _events: list[tuple[str, int, int, int]] = []

    def _timed(owner: Any, name: str, part: str) -> None:
        function: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic_ns()
            try:
                return function(*args, **kwargs)
            finally:
                _events.append((part, threading.get_ident(), started, time.monotonic_ns()))

        setattr(owner, name, wrapper)

    def _time_the_write_turn() -> None:
        """How long each thread waited for the SQLite write turn, and held it (a context manager)."""
        turn = importlib.import_module("radassist.db.engine").SqliteWriteTurn
        enter, leave, asked = turn.__enter__, turn.__exit__, threading.local()

        def take(self: Any) -> Any:
            asked.at = time.monotonic_ns()
            taken = enter(self)
            asked.got = time.monotonic_ns()
            return taken

        def give_back(self: Any, *exc: Any) -> Any:
            left = leave(self, *exc)
            _events.append(("write turn, waiting", threading.get_ident(), asked.at, asked.got))
            _events.append(("write turn, held", threading.get_ident(), asked.got, time.monotonic_ns()))
            return left

        turn.__enter__, turn.__exit__ = take, give_back

    def _dump() -> None:
        if _events:
            path = os.path.join(_FOLDER, f"{os.getpid()}.json")
            with open(path + ".tmp", "w") as out:
                json.dump(_events, out)
            os.replace(path + ".tmp", path)  # a reader never meets a half-written file

    def _dump_now_and_then() -> None:
        while True:
            time.sleep(0.5)
            _dump()

    for _module, _owner, _name, _part in json.loads(os.environ["RADASSIST_BENCH_WRAPPED"]):
        _target = importlib.import_module(_module)
        _timed(getattr(_target, _owner) if _owner else _target, _name, _part)
    if os.environ.get("RADASSIST_BENCH_WRITE_TURN"):
        _time_the_write_turn()
    atexit.register(_dump)
    threading.Thread(target=_dump_now_and_then, daemon=True).start()
