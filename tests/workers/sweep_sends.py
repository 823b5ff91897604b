"""What the sweep sends, recorded by task name instead of sent (its messages go through
:func:`radassist.broker.send_job_tasks`, which sends each through :func:`radassist.broker.send_job_task`)."""

from __future__ import annotations

from collections import defaultdict

import pytest


def record_sweep_sends(monkeypatch: pytest.MonkeyPatch) -> defaultdict[str, list[str]]:
    """The ids the sweep sends from now on, by task name (``radassist.broker.*_TASK``)."""
    from radassist import broker

    sent: defaultdict[str, list[str]] = defaultdict(list)
    monkeypatch.setattr(broker, "send_job_task",
                        lambda _app, _url, task, item, *_, **__: sent[task].append(str(item)))
    return sent
