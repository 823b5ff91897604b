"""Why something failed, in words an administrator can act on, for the worklist and the study page.

A failure's reason is never only an exception's class name, and never carries patient data: our
own errors say what they mean; files missing or unreadable are named as such; a ``ValueError`` or
``TypeError`` keeps its first line with every single-quoted value blanked (libraries quote the
offending value so, as Python's repr does, and it may be a name or an ID; our builders name an
argument or field in double quotes, which stay); anything else says which step failed unexpectedly
and that the worker's log has the traceback.
"""

from __future__ import annotations

import re

from pydicom.errors import InvalidDicomError

from radassist.errors import RadAssistError

REASON_MAX_CHARS = 500
_QUOTED = re.compile(r"'[^']*'")


def plain_reason(exc: BaseException, step: str = "the builder") -> str:
    """Why ``step`` failed with ``exc``, in words."""
    if isinstance(exc, RadAssistError):
        return exc.message[:REASON_MAX_CHARS]
    if isinstance(exc, FileNotFoundError):
        return "a received instance file is missing from the store"
    if isinstance(exc, InvalidDicomError):
        return "a received instance file is not readable as DICOM"
    if isinstance(exc, MemoryError):
        return f"the worker ran out of memory in {step}"
    if isinstance(exc, OSError):
        return f"a stored file could not be read or written ({exc.strerror or type(exc).__name__})"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, (ValueError, TypeError)) and first:
        return _QUOTED.sub("'…'", first)[:REASON_MAX_CHARS]
    return (f"an unexpected error in {step} ({type(exc).__name__}, a fault of RadAssist or a library it uses); "
            f"the worker log has the traceback")
