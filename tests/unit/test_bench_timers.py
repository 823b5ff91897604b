"""The listener benches' timers (bench/timed_parts.py) still find what they wrap.

The benches are not run in CI, and they wrap some private functions of the listener: a rename
would surface only when someone next measures.  These tests fail at the rename instead, and run
the timing hook in a real interpreter, as a listener process would load it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

BENCH = REPO / "bench"


@pytest.fixture
def bench() -> Iterator[dict[str, ModuleType]]:
    """The bench scripts, imported the way they import each other (``bench/`` on ``sys.path``)."""
    sys.path.insert(0, str(BENCH))
    try:
        import listener_phases
        import listener_timeline
        import timed_parts

        yield {"phases": listener_phases, "timeline": listener_timeline, "timed_parts": timed_parts}
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("script", ["phases", "timeline"])
def test_every_timed_function_is_still_there(bench: dict[str, ModuleType], script: str) -> None:
    wrapped = bench[script].WRAPPED
    assert wrapped
    assert bench["timed_parts"].unwrappable(wrapped) == []


def test_a_renamed_function_is_named(bench: dict[str, ModuleType]) -> None:
    timed_parts = bench["timed_parts"]
    gone = timed_parts.Wrapped("dicom_node.group_commit", "GroupCommit", "_commit_renamed", "rows")
    assert timed_parts.unwrappable((gone,)) == ["dicom_node.group_commit.GroupCommit._commit_renamed"]
    with pytest.raises(SystemExit) as stopped:  # the bench stops before it starts a listener
        timed_parts.refuse_unwrappable(argparse.ArgumentParser(), (gone,))
    assert stopped.value.code == 2


def test_the_hook_times_calls_in_a_new_interpreter(bench: dict[str, ModuleType], tmp_path: Path) -> None:
    timed_parts = bench["timed_parts"]
    wrapped = (timed_parts.Wrapped("radassist.intake.structure", "", "as_transfer_syntax", "syntax"),)
    folder = tmp_path / "timings"
    environment = {**os.environ, **timed_parts.hook_environment(folder, wrapped)}
    calls = "import radassist.intake.structure as s; s.as_transfer_syntax('1.2.840.10008.1.2.1'); s.as_transfer_syntax('1.2.840.10008.1.2')"
    subprocess.run([sys.executable, "-c", calls], cwd=REPO, env=environment, check=True, timeout=120)

    recorded = timed_parts.recorded_calls(folder, 0, 2**63)
    assert [call.part for call in recorded] == ["syntax", "syntax"]
    assert all(call.end >= call.start for call in recorded)
    assert len(list(folder.glob("*.json"))) == 1  # one file per process, written at its exit
    assert json.loads(next(folder.glob("*.json")).read_text())[0][0] == "syntax"


def test_without_the_folder_the_hook_does_nothing(bench: dict[str, ModuleType], tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(bench["timed_parts"].HOOK)}
    environment.pop("RADASSIST_BENCH_TIMINGS", None)
    probe = "import sys; print('radassist.intake.structure' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=environment, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    assert out.strip() == "False"  # nothing of the listener was imported, nothing wrapped
