"""Every sender gets its answer on a loaded machine: failure statuses and refusals, many times over.

The listener once dropped the status of a first C-STORE that it answered fast (a refusal, out of
resources) when the association thread had not yet flagged the association established; it showed
only under load, a few times in a hundred (dicom_node/fastpath/inline_store.py).  Here busy processes
take every core while dcmtk's storescu sends instances that must fail, and associations that must be
refused, again and again: each must be answered well inside storescu's own timeouts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from radassist.config import Settings
from tests.node.conftest import Node, secondary_capture, start_node  # noqa: F401  (fixture: an in-process listener)
from tests.peers import storescu

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(900)]

ROUNDS = 60
ANSWERED_WITHIN_S = 10.0
"""storescu waits 30 s; an answer that takes a third of that on a loaded machine is already a fault."""


@pytest.fixture
def busy_cores() -> Iterator[None]:
    """One spinning process per core, and as many again."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 1))]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait(10)


def _send(node: Node, instance: Path, called_ae: str = "RADASSIST") -> tuple[float, str]:
    """Seconds until storescu ended, and what it printed."""
    started = time.monotonic()
    result = storescu(node.port, instance, called_ae=called_ae, answer_timeout=30)
    return time.monotonic() - started, (result.stdout + result.stderr).lower()


def test_failures_and_refusals_are_answered_under_load(
    migrated_settings: Settings, start_node: Callable[..., Node], busy_cores: None, tmp_path: Path  # noqa: F811
) -> None:
    node = start_node(migrated_settings)
    problems: list[str] = []
    slowest = 0.0
    for round_number in range(ROUNDS):
        instance = secondary_capture(tmp_path / f"{round_number}.dcm")
        blocker = node.block_study_folder(instance)  # out of resources
        seconds, output = _send(node, instance)
        blocker.unlink()
        slowest = max(slowest, seconds)
        if "received store response (refused: outofresources)" not in output or seconds > ANSWERED_WITHIN_S:
            problems.append(f"round {round_number}: store answered in {seconds:.1f} s: {output[-300:]}")
        seconds, output = _send(node, instance, called_ae="NOT-OURS")
        slowest = max(slowest, seconds)
        if "association rejected" not in output or seconds > ANSWERED_WITHIN_S:
            problems.append(f"round {round_number}: refusal answered in {seconds:.1f} s: {output[-300:]}")
    print(f"\n{ROUNDS} failing stores and {ROUNDS} refusals under load: slowest answer {slowest:.2f} s")
    assert problems == []
    assert node.counters.instances_failed == ROUNDS
    assert node.counters.associations_refused == ROUNDS
