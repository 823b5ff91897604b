"""The retry policy for deliveries: exponential backoff, capped, until a maximum age."""

from __future__ import annotations

import datetime as dt

from radassist.config import DeliverySettings


def backoff_seconds(attempts: int, policy: DeliverySettings) -> float:
    """Wait before the next try after ``attempts`` failed ones: initial, 2x, 4x ... capped."""
    exponent = max(attempts - 1, 0)
    return float(min(policy.retry_initial_seconds * (2**exponent), policy.retry_max_seconds))


def expired(first_attempt_at: dt.datetime | None, now: dt.datetime, policy: DeliverySettings) -> bool:
    """True once a delivery has kept failing for longer than the policy's maximum age."""
    if first_attempt_at is None:
        return False
    return (now - first_attempt_at).total_seconds() > policy.max_age_seconds
