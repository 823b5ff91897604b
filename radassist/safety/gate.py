"""The gate: each warning gets its check's policy from ``[safety]``, and the draft is held when one
of them says ``hold``.

What the gate decided is stored with the draft (``drafts.warnings``: check, policy, message), so the
worklist, the study page and the outputs read the decision, never re-apply the settings.  Every
warning whose policy is not ``record`` is stated in the outputs: an ``annotate`` one always, a
``hold`` one once a radiologist released the draft (it goes out still an unverified AI draft).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, get_args

from radassist.config.safety import Policy, SafetySettings
from radassist.safety.checks import Check, SafetyWarning

POLICIES: tuple[Policy, ...] = get_args(Policy)


@dataclass(frozen=True, slots=True)
class AppliedWarning:
    """A warning with the policy that applied to it."""

    check: Check
    policy: Policy
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check.value, "policy": self.policy, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AppliedWarning | None:
        """The warning as stored; None for anything else."""
        try:
            check, policy = Check(str(data["check"])), str(data["policy"])
            message = str(data["message"])
        except (KeyError, TypeError, ValueError):
            return None
        for known in POLICIES:
            if policy == known:
                return cls(check, known, message)
        return None


@dataclass(frozen=True)
class GateDecision:
    warnings: tuple[AppliedWarning, ...] = ()

    @property
    def hold(self) -> bool:
        """True when a warning's policy is ``hold``: nothing is built or sent until a person decides."""
        return any(w.policy == "hold" for w in self.warnings)

    @property
    def checks(self) -> tuple[str, ...]:
        """The checks that fired, each once, in :class:`Check` order."""
        fired = {w.check for w in self.warnings}
        return tuple(c.value for c in Check if c in fired)

    def stored(self) -> list[dict[str, str]]:
        return [w.as_dict() for w in self.warnings]


def decide(warnings: Iterable[SafetyWarning], settings: SafetySettings) -> GateDecision:
    """Each warning with its check's policy."""
    policies: dict[Check, Policy] = {check: getattr(settings, check.value) for check in Check}
    return GateDecision(tuple(AppliedWarning(w.check, policies[w.check], w.message) for w in warnings))


def applied_warnings(stored: Iterable[Any] | None) -> list[AppliedWarning]:
    """The warnings as stored with a draft; anything malformed left out."""
    out = []
    for value in stored or ():
        warning = AppliedWarning.from_dict(value) if isinstance(value, Mapping) else None
        if warning is not None:
            out.append(warning)
    return out


def stated_warnings(stored: Iterable[Any] | None) -> list[str]:
    """The sentences the SR and the ORU carry: each warning whose policy is not ``record``."""
    return [f"Automated check warning ({w.check.value}): {w.message}."
            for w in applied_warnings(stored) if w.policy != "record"]


def checks_column(checks: Iterable[str]) -> str:
    """The fired checks as stored for filtering: `` anatomy sex `` (a LIKE on `` name `` finds one)."""
    names = [c for c in checks if c]
    return f" {' '.join(names)} " if names else ""


def column_checks(value: str | None) -> tuple[str, ...]:
    """The checks of a stored :func:`checks_column` value."""
    return tuple((value or "").split())
