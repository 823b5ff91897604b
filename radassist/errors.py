"""Errors classified by what happens next, not by where they happened.

* :class:`RejectedInput` -- the sender is told now; nothing is retried.
* :class:`TransientFailure` -- the work is retried with backoff.
* :class:`PermanentFailure` -- the job or delivery is marked failed, with its reason.

Every concrete error carries a stable ``code`` (shown on the worklist, used in metrics) and a
message that must never contain patient data: library exceptions that may embed a dataset are
caught at our boundary and re-raised with a clean message.
"""

from __future__ import annotations


class RadAssistError(Exception):
    """Root of every error RadAssist raises on purpose."""

    code: str = "radassist.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class RejectedInput(RadAssistError):
    """The sender is told at once (a DICOM failure status, an HL7 AR); nothing is retried."""

    code = "input.rejected"


class TransientFailure(RadAssistError):
    """A peer is down or busy; retrying later may succeed."""

    code = "transient"


class PermanentFailure(RadAssistError):
    """Retrying cannot help: the job or delivery fails with this reason."""

    code = "permanent"


class ConfigError(RadAssistError):
    """The configuration file or an environment override is invalid; startup stops."""

    code = "config.invalid"
