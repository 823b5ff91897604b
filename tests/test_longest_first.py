"""The queue of test modules for pytest-xdist starts with the longest (tests/longest_first.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import pytest

from tests.conftest import REPO
from tests.longest_first import MEASURED_SECONDS, longest_first


@dataclass
class _Item:
    nodeid: str


def test_every_measured_module_exists() -> None:
    """A module renamed or removed would silently lose its place at the head of the queue."""
    missing = [module for module in MEASURED_SECONDS if not (REPO / module).is_file()]
    assert missing == []


def test_measured_modules_go_first_longest_first_then_the_most_tests() -> None:
    slow, slower = sorted(MEASURED_SECONDS, key=MEASURED_SECONDS.__getitem__)[:2]
    nodeids = ["tests/a/test_one.py::t", f"{slow}::t1", "tests/b/test_two.py::t1", f"{slower}::t",
               "tests/b/test_two.py::t2", f"{slow}::t2"]
    items = [_Item(nodeid) for nodeid in nodeids]
    longest_first(cast(list[pytest.Item], items))
    assert [item.nodeid for item in items] == [
        f"{slower}::t", f"{slow}::t1", f"{slow}::t2",
        "tests/b/test_two.py::t1", "tests/b/test_two.py::t2", "tests/a/test_one.py::t"]
