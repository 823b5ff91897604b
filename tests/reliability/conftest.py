"""Fixtures of the fault-injection suite: the tiny model, a private cluster/broker/peers per test,
and the results table, printed and written to RESULTS.md at the end of the session."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability.harness import (
    HEADER,
    Counts,
    Pacs,
    PrivatePostgres,
    PrivateRedis,
    Ris,
    Stack,
    outage_seconds,
    write_section,
)

_results: list[Counts] = []


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from radassist_devtools.tiny_models import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-gemma3") / "model", arch="gemma3")


@dataclass
class Rig:
    """One scenario's world: its own PostgreSQL cluster, Redis broker, PACS, RIS and service."""

    root: Path
    pg: PrivatePostgres
    redis: PrivateRedis
    pacs: Pacs
    ris: Ris
    model: Path
    stack: Stack | None = None

    def service(self, *, draft_workers: int = 1, extra: dict[str, list[str]] | None = None) -> Stack:
        self.stack = Stack(self.root / "svc", database_url=self.pg.create_database("radassist"),
                           broker_url=self.redis.url, model=self.model, pacs=self.pacs, ris=self.ris, extra=extra)
        self.stack.start_all(draft_workers=draft_workers)
        return self.stack


@pytest.fixture
def rig(tmp_path: Path, tiny_model: Path) -> Iterator[Rig]:
    pg = PrivatePostgres().init()
    pg.start()
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    pacs, ris = Pacs(tmp_path / "pacs"), Ris()
    pacs.start()
    ris.start()
    world = Rig(tmp_path, pg, redis, pacs, ris, tiny_model)
    try:
        yield world
    finally:
        if world.stack is not None:
            world.stack.stop_all()
        for thing in (ris, pacs, redis, pg):
            with contextlib.suppress(Exception):
                thing.close()


@pytest.fixture
def record() -> Iterator[list[Counts]]:
    """Append a scenario's Counts here; they go into the session's table even when its asserts fail."""
    mine: list[Counts] = []
    yield mine
    _results.extend(mine)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _results:
        return
    table = "\n".join([HEADER, *(r.row() for r in _results)])
    text = (f"## Fault injection (tests/reliability)\n\nOutage length: {outage_seconds():.0f} s "
            "(RADASSIST_RELIABILITY_OUTAGE_SECONDS). Target: 0 lost, 0 duplicated, 0 stuck.\n\n" + table)
    terminalreporter.write_line("")
    for line in text.splitlines():
        terminalreporter.write_line(line)
    write_section("scenarios", text)
