"""The priors task runs on the io worker: network-bound, it loads no torch and no transformers."""

from __future__ import annotations

from tests.test_import_boundaries import _modules_after_import


def test_the_priors_task_loads_no_model_runtime() -> None:
    loaded = _modules_after_import("workers.tasks.priors", "radassist.prefetch.run", "radassist.prefetch.read")
    assert "workers.tasks.priors" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in ("torch", "transformers"))
    assert heavy == []
