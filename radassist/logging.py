"""Log configuration for the entry points, and the log context every record carries.

Library modules only call ``logging.getLogger(__name__)``; handlers are installed here, by the
process entry points.  Context (job id, study handle, Celery task id) travels in contextvars, bound
at the start of a task and cleared at its end, never interpolated by hand.  A study is named by
its handle (:func:`radassist.identifiers.study_handle`), the same in every process, so one grep
follows it from C-STORE to the RIS's ACK.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

job_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("job_id", default="-")
study_var: contextvars.ContextVar[str] = contextvars.ContextVar("study", default="-")
"""The study handle (12 hex), never its UID or database id."""
task_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("task_id", default="-")

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s [job=%(job_id)s study=%(study)s] %(message)s"


class ContextFilter(logging.Filter):
    """Copies the contextvars onto each record so the format can show them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = job_id_var.get()
        record.study = study_var.get()
        record.task_id = task_id_var.get()
        return True


@contextmanager
def log_context(*, job_id: object = None, study: str | None = None, task_id: object = None) -> Iterator[None]:
    """Bind surrogate ids (never patient data) to every record logged inside the block; ``study`` is
    the study's handle."""
    tokens = []
    for var, value in ((job_id_var, job_id), (study_var, study), (task_id_var, task_id)):
        if value is not None:
            tokens.append((var, var.set(str(value))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class RedactQuotedValues(logging.Filter):
    """Blanks the quoted values in third-party messages: pydicom and pynetdicom quote the offending
    element value ("Invalid value for VR PN: 'DOE^JANE'"), which may be a name or an ID.

    The message's words stay (what went wrong is useful), the values go; tracebacks are dropped.
    """

    _QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._QUOTED.sub("'…'", record.getMessage())
        record.args = None
        record.exc_info, record.exc_text = None, None
        return True


_THIRD_PARTY_WITH_VALUES = ("pydicom", "pynetdicom", "py.warnings")


def configure_logging(level: str = "INFO") -> None:
    """Install one stderr handler on the root logger; called once per process by its entry point."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(ContextFilter())
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("radassist").setLevel(level)
    logging.getLogger("dicom_node").setLevel(level)
    logging.getLogger("workers").setLevel(level)
    # pynetdicom logs whole C-FIND/C-STORE identifiers at DEBUG; keep it at INFO or above.
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    # pydicom warns twice about a bad value (its logger and warnings.warn, which would print to
    # stderr as is): both go through the log, with the values blanked.
    logging.captureWarnings(True)
    for name in _THIRD_PARTY_WITH_VALUES:
        library = logging.getLogger(name)
        library.filters[:] = [f for f in library.filters if not isinstance(f, RedactQuotedValues)]
        library.addFilter(RedactQuotedValues())


def short_hash(value: str | None) -> str | None:
    """A 12-hex handle for a value that must not be logged itself (accession numbers, UIDs at INFO)."""
    if not value:
        return None
    import hashlib

    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]
