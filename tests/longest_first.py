"""The order in which pytest-xdist hands test modules to its workers: the longest first.

With ``--dist loadfile`` each module runs whole on one worker, and a worker that is free takes the
next module of the queue.  pytest-xdist orders that queue by the number of tests in each module
(``--loadscope-reorder``, its default), so a module of one or two long tests (the evaluation run,
the grounded viewer pipeline) came last and ran on alone while the other workers had finished:
on 2026-12-07 the main pass took 703 s where its 1,817 s of tests over three workers fill 606 s.
pyproject's addopts turn that reordering off (``--no-loadscope-reorder``) and
:func:`longest_first` puts the modules measured to take longest at the head of the queue, the
longest first; the rest follow by their number of tests, as pytest-xdist would order them.

The seconds are each module's setup, call and teardown time (``--durations=0``) on the 2-core CI
machine, 2026-12-07; a module that grows or shrinks only moves in the queue, nothing fails.
Re-measure with ``.venv/bin/python -m pytest --durations=0`` when the suite's shape changes.
"""

from __future__ import annotations

from collections import Counter

import pytest

MEASURED_SECONDS: dict[str, float] = {
    "tests/evaluation/test_eval.py": 109.3,
    "tests/viewer/test_grounded_pipeline.py": 100.8,
    "tests/e2e/test_pipeline.py": 99.2,
    "tests/security/test_hostile_network.py": 77.6,
    "tests/badinput/test_web_hostile.py": 57.1,
    "tests/security/test_data_at_rest.py": 55.0,
    "tests/e2e/test_shadow.py": 49.6,
    "tests/conversation/test_browser.py": 49.2,
    "tests/badinput/test_dicom_corpus.py": 45.8,
    "tests/web/test_browser.py": 44.0,
    "tests/e2e/test_priors_pipeline.py": 42.5,
    "tests/safety/test_browser_review.py": 42.1,
    "tests/badinput/test_store_fuzz.py": 41.9,
    "tests/quality/test_measuring.py": 41.2,
    "tests/conversation/test_answer.py": 40.7,
    "tests/safety/test_pipeline_safety.py": 38.9,
    "tests/security/test_phi_sentinels.py": 36.5,
    "tests/drafting/test_takeover.py": 30.6,
    "tests/node/test_process.py": 29.3,
    "tests/drafting/test_stat.py": 26.3,
}
"""Seconds per module, the modules of at least 25 s (measured as the module docstring says)."""


def module_of(item: pytest.Item) -> str:
    """The module part of a test's node id (``tests/e2e/test_pipeline.py``), the unit of ``loadfile``."""
    return item.nodeid.split("::", 1)[0]


def longest_first(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: the measured modules by their seconds, then the others by their
    number of tests; a module's own tests keep their order (the sort is stable)."""
    tests_per_module = Counter(module_of(item) for item in items)

    def rank(item: pytest.Item) -> tuple[int, float]:
        module = module_of(item)
        seconds = MEASURED_SECONDS.get(module)
        if seconds is not None:
            return (0, -seconds)
        return (1, -tests_per_module[module])

    items.sort(key=rank)
