"""The listener must stay light: no torch, no transformers, no model package in its process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "radassist.models")


def _modules_after_import(*modules: str) -> set[str]:
    code = (
        "import json, sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_dicom_node_loads_no_model_code() -> None:
    loaded = _modules_after_import(
        "dicom_node.server",
        "dicom_node.__main__",
        "dicom_node.handlers",
        "dicom_node.access",
        "dicom_node.capacity",
        "dicom_node.associations",
        "radassist.completion.claim",
        "radassist.intake.structure",
        "radassist.pipelines",
    )
    assert "dicom_node.server" in loaded  # the import did happen
    offenders = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert offenders == []


def test_io_tasks_and_the_web_app_load_no_model_code() -> None:
    """Building outputs, delivering, sweeping and the worklist run without torch: an io worker never loads a model."""
    loaded = _modules_after_import(
        "workers.tasks.build",
        "workers.tasks.deliver",
        "workers.tasks.sweep",
        "workers.tasks.measure",
        "radassist.measuring.record",
        "radassist.outputs.outbox",
        "radassist.web.app",
        "radassist.web.routes.quality",
    )
    assert "workers.tasks.build" in loaded
    offenders = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert offenders == []
