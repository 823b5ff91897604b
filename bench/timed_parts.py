"""The listener benches' timers: which functions they wrap, and the calls those timers recorded.

``bench/listener_phases.py`` (one association, one process) and ``bench/listener_timeline.py``
(several of each) both wrap a few of the listener's functions with ``bench/timing_hook``'s
``sitecustomize``, which every listener process imports at start-up; this side names the functions,
checks that the checkout still has them, and reads back what each process recorded.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import NamedTuple

from ingest import REPO

HOOK = Path(__file__).resolve().parent / "timing_hook"


class Wrapped(NamedTuple):
    """A function to time: its module, its class ('' for a module's function), its name, and the part
    of the work it stands for in the report."""

    module: str
    owner: str
    name: str
    part: str


class Call(NamedTuple):
    """One timed call: its part, process and thread, start and end (``time.monotonic_ns``)."""

    part: str
    pid: int
    thread: int
    start: int
    end: int


def unwrappable(wrapped: tuple[Wrapped, ...]) -> list[str]:
    """The names in ``wrapped`` this checkout lacks (renamed since), as ``module.Class.name``: a bench
    says so before its listener starts, where the hook would fail inside every listener process."""
    sys.path.insert(0, str(REPO))
    missing = []
    for module, owner, name, _part in wrapped:
        target: object = importlib.import_module(module)
        if owner:
            target = getattr(target, owner, None)
        if target is None or not callable(getattr(target, name, None)):
            missing.append(".".join(filter(None, (module, owner, name))))
    return missing


def refuse_unwrappable(parser: argparse.ArgumentParser, wrapped: tuple[Wrapped, ...]) -> None:
    """Stop the bench with a usage error naming what :func:`unwrappable` found missing, if anything."""
    missing = unwrappable(wrapped)
    if missing:
        parser.error(f"these timed functions are gone (renamed?): {', '.join(missing)}; update WRAPPED")


def hook_environment(folder: Path, wrapped: tuple[Wrapped, ...], *, write_turn: bool = False) -> dict[str, str]:
    """What the listener's environment needs for the hook to time ``wrapped`` (and the SQLite write
    turn's waits and holds, with ``write_turn``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(filter(None, (str(HOOK), os.environ.get("PYTHONPATH"))))
    environment = {"PYTHONPATH": path, "RADASSIST_BENCH_TIMINGS": str(folder),
                   "RADASSIST_BENCH_WRAPPED": json.dumps([list(w) for w in wrapped])}
    if write_turn:
        environment["RADASSIST_BENCH_WRITE_TURN"] = "1"
    return environment


def recorded_calls(folder: Path, start: int, end: int) -> list[Call]:
    """Every process's timed calls that fell inside [start, end], in the order they started."""
    found: list[Call] = []
    for path in folder.glob("*.json"):
        pid = int(path.stem)
        found += [Call(part, pid, thread, a, b) for part, thread, a, b in json.loads(path.read_text())
                  if a >= start and b <= end]
    return sorted(found, key=lambda call: call.start)
